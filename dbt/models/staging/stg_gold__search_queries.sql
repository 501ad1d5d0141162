-- Every search with what followed it in its session (clicks, purchases of clicked results).
select
    search_event_id,
    session_id,
    user_key as visitor_key,
    query,
    searched_at,
    {{ utc_date('searched_at') }} as search_date,
    coalesce(cardinality(clicked_products), 0) as clicked_products,
    first_click_position,
    coalesce(cardinality(purchased_products), 0) as purchased_products,
    clicks,
    outcome,
    -- how many results the search found, when the client reported it (0: nothing found)
    result_count,
    coalesce(cardinality(shown_products), 0) as shown_products
from {{ source('gold', 'search_queries') }}
