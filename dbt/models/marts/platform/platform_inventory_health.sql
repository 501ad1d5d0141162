-- Stock health of every seller, for marketplace operations.
select
    inventory.tenant_id,
    tenants.store_name,
    count(*) as active_skus,
    count(*) filter (where inventory.stock_status = 'out_of_stock') as out_of_stock_skus,
    count(*) filter (where inventory.stock_status = 'low_stock') as low_stock_skus,
    round({{ ratio("count(*) filter (where inventory.stock_status = 'out_of_stock')", "count(*)") }}, 4)
        as stock_out_rate,
    sum(inventory.available) as units_available,
    round(percentile_cont(0.5) within group (order by inventory.days_of_cover)::numeric, 1) as median_days_of_cover
from {{ ref('seller_inventory_health') }} as inventory
inner join {{ ref('stg_silver__tenants') }} as tenants using (tenant_id)
group by 1, 2
