-- The marts and the lakehouse's gold.seller_daily count sales independently; they must agree on
-- orders, GMV and commission for every seller and day.
select
    coalesce(marts.tenant_id, lakehouse.tenant_id) as tenant_id,
    coalesce(marts.date, lakehouse.date) as date,
    marts.orders as mart_orders,
    lakehouse.orders as lakehouse_orders,
    marts.gmv as mart_gmv,
    lakehouse.gross_revenue as lakehouse_gmv
from {{ ref('seller_daily_sales') }} as marts
full outer join {{ ref('stg_gold__seller_days') }} as lakehouse using (tenant_id, date)
where coalesce(marts.orders, 0) <> coalesce(lakehouse.orders, 0)
    or coalesce(marts.gmv, 0) <> coalesce(lakehouse.gross_revenue, 0)
    or coalesce(marts.commission, 0) <> coalesce(lakehouse.commission, 0)
