-- Sub-orders with their units, succeeded refunds and, for sales, the buyer's running number of
-- purchases from that seller (1 = the buyer's first purchase there: a new customer).
with units as (
    select sub_order_id, sum(quantity) as units
    from {{ ref('stg_silver__order_items') }}
    group by sub_order_id
),

refunds as (
    select sub_order_id, sum(amount) as refunded_amount
    from {{ ref('stg_silver__refunds') }}
    where status = 'succeeded'
    group by sub_order_id
)

select
    sub_orders.*,
    coalesce(units.units, 0) as units,
    coalesce(refunds.refunded_amount, 0) as refunded_amount,
    case when sub_orders.is_sale then
        row_number() over (
            partition by sub_orders.tenant_id, sub_orders.buyer_id, sub_orders.is_sale
            order by sub_orders.created_at, sub_orders.sub_order_id
        )
    end as buyer_purchase_number
from {{ ref('stg_silver__sub_orders') }} as sub_orders
left join units using (sub_order_id)
left join refunds using (sub_order_id)
