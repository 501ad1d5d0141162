-- The marketplace's session funnel per day: sessions that viewed a product, added one to a cart,
-- and purchased; and the orders placed that day.
with sessions as (
    select
        event_date as date,
        session_id,
        bool_or(event_type = 'view') as viewed,
        bool_or(event_type = 'add_to_cart') as added_to_cart,
        bool_or(event_type = 'purchase') as purchased
    from {{ ref('stg_silver__events') }}
    group by 1, 2
),

funnel as (
    select
        date,
        count(*) as sessions,
        count(*) filter (where viewed) as viewing_sessions,
        count(*) filter (where added_to_cart) as carting_sessions,
        count(*) filter (where purchased) as purchasing_sessions
    from sessions
    group by 1
),

orders as (
    select placed_date as date, count(*) as orders_placed,
           count(*) filter (where status not in ('PAYMENT_PENDING', 'PAYMENT_FAILED', 'CANCELLED')) as orders_paid,
           sum(grand_total) filter (where status not in ('PAYMENT_PENDING', 'PAYMENT_FAILED', 'CANCELLED')) as gmv
    from {{ ref('stg_silver__orders') }}
    group by 1
)

select
    date,
    coalesce(funnel.sessions, 0) as sessions,
    coalesce(funnel.viewing_sessions, 0) as viewing_sessions,
    coalesce(funnel.carting_sessions, 0) as carting_sessions,
    coalesce(funnel.purchasing_sessions, 0) as purchasing_sessions,
    coalesce(orders.orders_placed, 0) as orders_placed,
    coalesce(orders.orders_paid, 0) as orders_paid,
    coalesce(orders.gmv, 0) as gmv,
    round({{ ratio('funnel.carting_sessions', 'funnel.viewing_sessions') }}, 4) as view_to_cart_rate,
    round({{ ratio('funnel.purchasing_sessions', 'funnel.carting_sessions') }}, 4) as cart_to_purchase_rate,
    round({{ ratio('funnel.purchasing_sessions', 'funnel.sessions') }}, 4) as session_conversion_rate
from funnel
full outer join orders using (date)
