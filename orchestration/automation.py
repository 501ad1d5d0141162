"""When things run: the refresh job (ingestion through dashboards), the sensor that starts it as
soon as new changes exist, the nightly schedule that catches up yesterday's partition, the feature
store materialised after every successful refresh, the nightly retraining, and the run-failure
sensor that sends a notification."""

from datetime import UTC, datetime

import dagster as dg

from orchestration.features import features_job
from orchestration.ingestion import pending_changes, refresh_request
from orchestration.training import train_job
from orchestration.resources import DAILY, Notifier, PlatformDatabase

# Every stage from ingestion to the dashboards (the later ML stages have jobs of their own); the
# neighbours are the other tables of lakehouse steps that build several at once.
STAGE_GROUPS = ("ingestion", "lakehouse", "warehouse", "analytics_staging", "analytics_intermediate",
                "seller_analytics", "platform_analytics", "dashboards")
REFRESH = dg.AssetSelection.groups(*STAGE_GROUPS).required_multi_asset_neighbors()

refresh_job = dg.define_asset_job(
    "refresh", selection=REFRESH, partitions_def=DAILY,
    description="Bronze ingest -> silver -> gold -> warehouse load -> dbt build -> dashboards.",
)


@dg.sensor(job=refresh_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Starts a refresh when the outbox or the shopper event log has rows bronze lacks.")
def new_changes_sensor(context: dg.SensorEvaluationContext, database: PlatformDatabase):
    pending = pending_changes(database)
    if not pending:
        return dg.SkipReason("bronze already holds every settled change")
    context.log.info(", ".join(f"{feed}: {row['rows']} new rows" for feed, row in pending.items()))
    return refresh_request(pending, datetime.now(UTC).date())


# Late events and corrections of yesterday are reloaded once the day is over.
nightly_refresh = dg.build_schedule_from_partitioned_job(
    refresh_job, hour_of_day=2, minute_of_hour=15, default_status=dg.DefaultScheduleStatus.RUNNING)


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[refresh_job], request_job=features_job,
                      default_status=dg.DefaultSensorStatus.RUNNING,
                      description="Materialises the feature store once a refresh has published new gold tables.")
def features_after_refresh(context: dg.RunStatusSensorContext):
    return dg.RunRequest(run_key=context.dagster_run.run_id)


# Models learn from the whole day's interactions, so they are retrained once a night, after the
# nightly refresh; a new model serves only if it beats the champion.
nightly_training = dg.ScheduleDefinition(job=train_job, cron_schedule="30 3 * * *",
                                         default_status=dg.DefaultScheduleStatus.RUNNING)


@dg.run_failure_sensor(default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Sends a notification for every failed run.")
def notify_on_run_failure(context: dg.RunFailureSensorContext, notifier: Notifier):
    notifier.notify("run_failed", job=context.dagster_run.job_name, run_id=context.dagster_run.run_id,
                    error=context.failure_event.message)


defs = dg.Definitions(jobs=[refresh_job],
                      sensors=[new_changes_sensor, features_after_refresh, notify_on_run_failure],
                      schedules=[nightly_refresh, nightly_training])
