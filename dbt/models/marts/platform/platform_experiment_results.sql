-- A/B experiment results per experiment and variant. The unit is the shopper, because assignment
-- hashes the shopper (serving/experiments.py), so shoppers, not impressions, are independent.
-- A shopper is exposed from the first event carrying the experiment in its context (the serving
-- API records an impression of every item it returns in an experiment; clients echo the context
-- on clicks and add-to-carts) and counts in that event's variant. Each rate is the share of
-- exposed shoppers who clicked an item shown in the experiment, added anything to a cart, or
-- purchased anything, at or after their first exposure, with its 95% Wilson interval.
with experiment_events as (
    select * from {{ ref('stg_silver__events') }}
    where experiment is not null and variant is not null
),

exposed as (
    select
        experiment,
        visitor_key,
        (array_agg(variant order by occurred_at, event_id))[1] as variant,
        min(occurred_at) as exposed_at,
        count(*) filter (where event_type = 'impression') as impressions,
        count(*) filter (where event_type = 'click') as clicks
    from experiment_events
    group by 1, 2
),

outcomes as (
    select
        exposed.experiment,
        exposed.visitor_key,
        bool_or(events.event_type = 'add_to_cart') as added_to_cart,
        bool_or(events.event_type = 'purchase') as purchased
    from exposed
    inner join {{ ref('stg_silver__events') }} as events
        on events.visitor_key = exposed.visitor_key
        and events.occurred_at >= exposed.exposed_at
        and events.event_type in ('add_to_cart', 'purchase')
    group by 1, 2
),

per_variant as (
    select
        exposed.experiment,
        exposed.variant,
        count(*) as users,
        sum(exposed.impressions) as impressions,
        sum(exposed.clicks) as clicks,
        count(*) filter (where exposed.clicks > 0) as users_clicked,
        count(*) filter (where outcomes.added_to_cart) as users_added_to_cart,
        count(*) filter (where outcomes.purchased) as users_purchased,
        min(exposed.exposed_at) as first_exposed_at,
        max(exposed.exposed_at) as last_exposed_at
    from exposed
    left join outcomes using (experiment, visitor_key)
    group by 1, 2
),

served_versions as (
    select experiment, variant, max(model_version) as model_version
    from experiment_events
    group by 1, 2
)

select
    per_variant.experiment,
    per_variant.variant,
    served_versions.model_version,
    per_variant.users,
    per_variant.impressions,
    per_variant.clicks,
    per_variant.users_clicked,
    round({{ ratio('per_variant.users_clicked', 'per_variant.users') }}, 4) as click_through_rate,
    round({{ wilson_interval('per_variant.users_clicked', 'per_variant.users', 'lower') }}, 4) as click_through_low,
    round({{ wilson_interval('per_variant.users_clicked', 'per_variant.users', 'upper') }}, 4) as click_through_high,
    per_variant.users_added_to_cart,
    round({{ ratio('per_variant.users_added_to_cart', 'per_variant.users') }}, 4) as add_to_cart_rate,
    round({{ wilson_interval('per_variant.users_added_to_cart', 'per_variant.users', 'lower') }}, 4)
        as add_to_cart_low,
    round({{ wilson_interval('per_variant.users_added_to_cart', 'per_variant.users', 'upper') }}, 4)
        as add_to_cart_high,
    per_variant.users_purchased,
    round({{ ratio('per_variant.users_purchased', 'per_variant.users') }}, 4) as conversion_rate,
    round({{ wilson_interval('per_variant.users_purchased', 'per_variant.users', 'lower') }}, 4) as conversion_low,
    round({{ wilson_interval('per_variant.users_purchased', 'per_variant.users', 'upper') }}, 4) as conversion_high,
    per_variant.first_exposed_at,
    per_variant.last_exposed_at
from per_variant
left join served_versions using (experiment, variant)
