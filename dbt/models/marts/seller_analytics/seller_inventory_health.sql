-- Stock of every active SKU over all warehouses against recent demand. Days of cover is how long
-- the available stock lasts at the recent daily sales rate (null when nothing sold recently).
-- Low stock is the seller's own rule (available below the SKU's threshold, as the inventory
-- service's low-stock alert says) or too few days of cover.
with stock as (
    select tenant_id, sku_id, sum(available) as available, sum(reserved) as reserved, count(*) as warehouses
    from {{ ref('stg_silver__inventory_levels') }}
    group by 1, 2
),

covered as (
    select
        skus.tenant_id,
        skus.sku_id,
        skus.product_id,
        skus.sku_code,
        products.title as product_title,
        coalesce(stock.available, 0) as available,
        coalesce(stock.reserved, 0) as reserved,
        coalesce(stock.warehouses, 0) as warehouses,
        skus.low_stock_threshold,
        coalesce(demand.units_sold, 0) as units_sold_recently,
        round(coalesce(demand.average_daily_units, 0), 3) as average_daily_units,
        round(coalesce(stock.available, 0) / nullif(demand.average_daily_units, 0), 1) as days_of_cover
    from {{ ref('stg_silver__skus') }} as skus
    inner join {{ ref('stg_silver__products') }} as products
        on products.product_id = skus.product_id and products.tenant_id = skus.tenant_id
    left join stock on stock.sku_id = skus.sku_id and stock.tenant_id = skus.tenant_id
    left join {{ ref('int_skus__demand') }} as demand
        on demand.sku_id = skus.sku_id and demand.tenant_id = skus.tenant_id
    where skus.is_active and products.status = 'active' and not products.is_deleted
)

select
    *,
    case
        when available = 0 then 'out_of_stock'
        when available < low_stock_threshold
            or days_of_cover < {{ var('low_stock_days_of_cover') }} then 'low_stock'
        else 'in_stock'
    end as stock_status
from covered
