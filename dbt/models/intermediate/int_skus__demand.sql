-- Units of each SKU sold in the demand window before the as-of day, and the daily average.
with window_bounds as (
    select
        {{ as_of_date() }} as as_of_date,
        {{ as_of_date() }} - {{ var('demand_window_days') }} + 1 as window_start
)

select
    items.tenant_id,
    items.sku_id,
    sum(items.quantity) as units_sold,
    sum(items.quantity)::numeric / {{ var('demand_window_days') }} as average_daily_units
from {{ ref('stg_silver__order_items') }} as items
inner join {{ ref('stg_silver__sub_orders') }} as sub_orders using (sub_order_id)
cross join window_bounds
where sub_orders.is_sale
    and sub_orders.order_date between window_bounds.window_start and window_bounds.as_of_date
group by 1, 2
