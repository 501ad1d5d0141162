-- Each seller's activity per month since it joined: sales, GMV, commission earned by the
-- platform, products sold and listed.
with months as (
    select
        tenants.tenant_id,
        generate_series(
            date_trunc('month', tenants.created_at),
            date_trunc('month', {{ as_of_date() }}::timestamp),
            interval '1 month'
        )::date as month
    from {{ ref('stg_silver__tenants') }} as tenants
),

-- Generated histories can predate the tenant's own row: start at its first sale if earlier.
first_sales as (
    select tenant_id, date_trunc('month', min(order_date))::date as first_month
    from {{ ref('stg_silver__sub_orders') }}
    group by 1
),

all_months as (
    select months.tenant_id, months.month from months
    union
    select first_sales.tenant_id, generate_series(first_sales.first_month,
        date_trunc('month', {{ as_of_date() }}::timestamp), interval '1 month')::date
    from first_sales
),

sales as (
    select
        tenant_id,
        date_trunc('month', order_date)::date as month,
        count(*) as orders,
        sum(items_total) as gmv,
        sum(commission) as commission,
        count(distinct buyer_id) as customers
    from {{ ref('int_sub_orders__enriched') }}
    where is_sale
    group by 1, 2
),

products_sold as (
    select tenant_id, date_trunc('month', date)::date as month, count(distinct product_id) as products_sold
    from {{ ref('int_products__daily_activity') }}
    where units_sold > 0
    group by 1, 2
),

listings as (
    select tenant_id, date_trunc('month', created_at)::date as month, count(*) as products_listed
    from {{ ref('stg_silver__products') }}
    group by 1, 2
)

select
    all_months.tenant_id,
    all_months.month,
    tenants.store_name,
    tenants.plan,
    tenants.status,
    coalesce(sales.orders, 0) as orders,
    coalesce(sales.gmv, 0) as gmv,
    coalesce(sales.commission, 0) as commission,
    coalesce(sales.customers, 0) as customers,
    coalesce(products_sold.products_sold, 0) as products_sold,
    coalesce(listings.products_listed, 0) as products_listed,
    coalesce(sales.orders, 0) > 0 as is_active
from all_months
inner join {{ ref('stg_silver__tenants') }} as tenants using (tenant_id)
left join sales using (tenant_id, month)
left join products_sold using (tenant_id, month)
left join listings using (tenant_id, month)
