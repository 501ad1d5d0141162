-- Per product and day: the shopper funnel (views, add-to-carts, purchases) from events, and
-- sales, revenue and returns from orders.
with funnel as (
    select
        tenant_id,
        product_id,
        event_date as date,
        count(*) filter (where event_type = 'view') as views,
        count(*) filter (where event_type = 'add_to_cart') as add_to_carts,
        count(*) filter (where event_type = 'purchase') as purchases,
        count(distinct session_id) filter (where event_type = 'view') as viewing_sessions
    from {{ ref('stg_silver__events') }}
    where product_id is not null and tenant_id is not null
    group by 1, 2, 3
),

sales as (
    select
        items.tenant_id,
        items.product_id,
        sub_orders.order_date as date,
        count(distinct items.sub_order_id) as orders,
        sum(items.quantity) as units_sold,
        sum(items.line_total) as revenue,
        coalesce(sum(items.quantity) filter (where sub_orders.is_returned), 0) as units_returned
    from {{ ref('stg_silver__order_items') }} as items
    inner join {{ ref('stg_silver__sub_orders') }} as sub_orders using (sub_order_id)
    where sub_orders.is_sale
    group by 1, 2, 3
)

select
    tenant_id,
    product_id,
    date,
    coalesce(funnel.views, 0) as views,
    coalesce(funnel.viewing_sessions, 0) as viewing_sessions,
    coalesce(funnel.add_to_carts, 0) as add_to_carts,
    coalesce(funnel.purchases, 0) as purchases,
    coalesce(sales.orders, 0) as orders,
    coalesce(sales.units_sold, 0) as units_sold,
    coalesce(sales.revenue, 0) as revenue,
    coalesce(sales.units_returned, 0) as units_returned
from funnel
full outer join sales using (tenant_id, product_id, date)
