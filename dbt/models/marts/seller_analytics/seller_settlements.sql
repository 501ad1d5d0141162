-- What the platform owes each seller, week by week (Monday to Sunday, UTC). A week's statement
-- holds the sales made in it (items, shipping and the tax collected for the seller, less the
-- platform's commission) and the refunds issued in it; it is paid out `settlement_hold_days`
-- after the week ends, which leaves time for returns.
with sales as (
    select
        tenant_id,
        date_trunc('week', order_date)::date as period_start,
        count(*) as sales,
        sum(items_total) as items_total,
        sum(shipping_total) as shipping_total,
        sum(tax_total) as tax_total,
        sum(commission) as commission
    from {{ ref('int_sub_orders__enriched') }}
    where is_sale
    group by 1, 2
),

refunds as (
    select tenant_id, date_trunc('week', refund_date)::date as period_start, sum(amount) as refunds
    from {{ ref('stg_silver__refunds') }}
    where status = 'succeeded'
    group by 1, 2
),

statements as (
    select
        tenant_id,
        period_start,
        period_start + 6 as period_end,
        period_start + 6 + {{ var('settlement_hold_days') }} as payout_date,
        coalesce(sales.sales, 0) as sales,
        coalesce(sales.items_total, 0) as items_total,
        coalesce(sales.shipping_total, 0) as shipping_total,
        coalesce(sales.tax_total, 0) as tax_total,
        coalesce(sales.commission, 0) as commission,
        coalesce(refunds.refunds, 0) as refunds
    from sales
    full outer join refunds using (tenant_id, period_start)
)

select
    statements.*,
    items_total + shipping_total + tax_total - commission - refunds as net_payout,
    case
        when {{ as_of_date() }} <= period_end then 'open'
        when {{ as_of_date() }} < payout_date then 'scheduled'
        else 'paid'
    end as status
from statements
