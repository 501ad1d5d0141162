-- Storefront traffic per day and device: sessions, visitors (signed in or anonymous), activity.
select
    event_date as date,
    device,
    count(distinct session_id) as sessions,
    count(distinct visitor_key) as visitors,
    count(distinct user_id) as signed_in_visitors,
    count(*) as events,
    count(*) filter (where event_type = 'view') as product_views,
    count(*) filter (where event_type = 'search') as searches,
    round(count(*)::numeric / nullif(count(distinct session_id), 0), 2) as events_per_session
from {{ ref('stg_silver__events') }}
group by 1, 2
