-- Cleaned shopper events (bots and duplicates already removed in silver).
select
    event_id,
    event_type,
    user_id,
    anonymous_id,
    -- signed-in shoppers by id, anonymous ones by device id, never confused
    coalesce(user_id::text, 'anon:' || anonymous_id) as visitor_key,
    session_id,
    occurred_at,
    event_date,
    tenant_id,
    product_id,
    query,
    position,
    quantity,
    coalesce(context ->> 'device', 'unknown') as device,
    -- the serving response the event is about (serving.experiments.CONTEXT_KEYS)
    context ->> 'experiment' as experiment,
    context ->> 'variant' as variant,
    context ->> 'model_version' as model_version,
    context ->> 'request_id' as request_id,
    -- how many results a search showed, when the client reports it
    case when jsonb_typeof(context -> 'result_count') = 'number'
         then (context ->> 'result_count')::integer end as result_count
from {{ source('silver', 'events') }}
