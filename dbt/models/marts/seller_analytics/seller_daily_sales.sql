-- Each seller's sales per day. GMV is the value of items sold; net revenue is what the seller
-- keeps of it: GMV less the platform's commission and refunds (refunds count on the day issued).
with sales as (
    select
        tenant_id,
        order_date as date,
        count(*) as orders,
        sum(units) as units,
        sum(items_total) as gmv,
        sum(commission) as commission,
        count(*) filter (where buyer_purchase_number = 1) as new_customer_orders
    from {{ ref('int_sub_orders__enriched') }}
    where is_sale
    group by 1, 2
),

refunds as (
    select tenant_id, refund_date as date, sum(amount) as refunds
    from {{ ref('stg_silver__refunds') }}
    where status = 'succeeded'
    group by 1, 2
)

select
    tenant_id,
    date,
    coalesce(sales.orders, 0) as orders,
    coalesce(sales.units, 0) as units,
    coalesce(sales.gmv, 0) as gmv,
    coalesce(refunds.refunds, 0) as refunds,
    coalesce(sales.commission, 0) as commission,
    coalesce(sales.gmv, 0) - coalesce(sales.commission, 0) - coalesce(refunds.refunds, 0) as net_revenue,
    round(sales.gmv / nullif(sales.orders, 0), 2) as average_order_value,
    coalesce(sales.new_customer_orders, 0) as new_customer_orders,
    coalesce(sales.orders, 0) - coalesce(sales.new_customer_orders, 0) as returning_customer_orders
from sales
full outer join refunds using (tenant_id, date)
