-- Monthly cohorts of each seller's customers: a customer joins the cohort of the month of their
-- first purchase there, and counts as active in every later month they buy again. Month 0 of a
-- cohort is its new customers; later months are returning ones.
with purchases as (
    select
        tenant_id,
        buyer_id,
        date_trunc('month', order_date)::date as activity_month,
        items_total
    from {{ ref('int_sub_orders__enriched') }}
    where is_sale
),

cohorts as (
    select tenant_id, buyer_id, min(activity_month) as cohort_month
    from purchases
    group by 1, 2
),

activity as (
    select
        purchases.tenant_id,
        cohorts.cohort_month,
        purchases.activity_month,
        count(distinct purchases.buyer_id) as active_customers,
        count(*) as orders,
        sum(purchases.items_total) as gmv
    from purchases
    inner join cohorts using (tenant_id, buyer_id)
    group by 1, 2, 3
),

sizes as (
    select tenant_id, cohort_month, count(*) as cohort_size
    from cohorts
    group by 1, 2
)

select
    activity.tenant_id,
    activity.cohort_month,
    activity.activity_month,
    ((extract(year from activity.activity_month) - extract(year from activity.cohort_month)) * 12
        + extract(month from activity.activity_month) - extract(month from activity.cohort_month))::integer
        as months_since_first_purchase,
    sizes.cohort_size,
    activity.active_customers,
    activity.orders,
    activity.gmv,
    round({{ ratio('activity.active_customers', 'sizes.cohort_size') }}, 4) as retention_rate
from activity
inner join sizes using (tenant_id, cohort_month)
