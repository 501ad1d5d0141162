-- The marketplace per month: sellers joining and active, buyers, orders and GMV, and GMV growth
-- over the previous month.
with monthly as (
    select
        month,
        count(*) as sellers,
        count(*) filter (where is_active) as active_sellers,
        sum(orders) as orders,
        sum(gmv) as gmv,
        sum(commission) as commission
    from {{ ref('platform_tenant_activity') }}
    group by 1
),

joined as (
    select date_trunc('month', created_at)::date as month, count(*) as new_sellers
    from {{ ref('stg_silver__tenants') }}
    group by 1
),

buyers as (
    select date_trunc('month', created_at)::date as month, count(*) as new_buyers
    from {{ ref('stg_silver__users') }}
    where role = 'buyer'
    group by 1
)

select
    monthly.month,
    monthly.sellers,
    coalesce(joined.new_sellers, 0) as new_sellers,
    monthly.active_sellers,
    coalesce(buyers.new_buyers, 0) as new_buyers,
    monthly.orders,
    monthly.gmv,
    monthly.commission,
    round({{ ratio("monthly.gmv - lag(monthly.gmv) over (order by monthly.month)",
                   "lag(monthly.gmv) over (order by monthly.month)") }}, 4) as gmv_growth
from monthly
left join joined using (month)
left join buyers using (month)
