-- Each product's daily funnel (views -> add to cart -> purchase), sales and returns, with its
-- current rating. Ratios are per day; a dashboard sums the counts over a range before dividing.
select
    activity.tenant_id,
    activity.product_id,
    activity.date,
    products.title as product_title,
    categories.name as category_name,
    activity.views,
    activity.viewing_sessions,
    activity.add_to_carts,
    activity.purchases,
    activity.orders,
    activity.units_sold,
    activity.revenue,
    activity.units_returned,
    {{ ratio('activity.add_to_carts', 'activity.views') }} as add_to_cart_rate,
    {{ ratio('activity.purchases', 'activity.views') }} as conversion_rate,
    {{ ratio('activity.units_returned', 'activity.units_sold') }} as return_rate,
    products.rating_avg,
    products.rating_count
from {{ ref('int_products__daily_activity') }} as activity
inner join {{ ref('stg_silver__products') }} as products
    on products.product_id = activity.product_id and products.tenant_id = activity.tenant_id
left join {{ ref('stg_silver__categories') }} as categories using (category_id)
