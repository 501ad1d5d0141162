-- Ratings of each reviewed product: count, average, distribution and moderation state.
select
    reviews.tenant_id,
    reviews.product_id,
    products.title as product_title,
    count(*) as reviews,
    round(avg(reviews.rating), 2) as average_rating,
    count(*) filter (where reviews.rating = 1) as one_star,
    count(*) filter (where reviews.rating = 2) as two_stars,
    count(*) filter (where reviews.rating = 3) as three_stars,
    count(*) filter (where reviews.rating = 4) as four_stars,
    count(*) filter (where reviews.rating = 5) as five_stars,
    count(*) filter (where reviews.moderation_status = 'pending') as pending_moderation,
    count(*) filter (where reviews.moderation_status = 'rejected') as rejected,
    max(reviews.created_at) as last_review_at
from {{ ref('stg_silver__reviews') }} as reviews
inner join {{ ref('stg_silver__products') }} as products
    on products.product_id = reviews.product_id and products.tenant_id = reviews.tenant_id
group by 1, 2, 3
