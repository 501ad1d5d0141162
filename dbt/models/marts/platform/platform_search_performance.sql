-- Search per day and normalised query: volume, zero-result rate (over searches whose client
-- reported a result count: gold.search_queries.result_count), click-through and purchase rates,
-- and the first clicked position.
select
    searches.search_date as date,
    searches.query,
    count(*) as searches,
    count(distinct searches.visitor_key) as searchers,
    count(searches.result_count) as searches_reporting_results,
    count(*) filter (where searches.result_count = 0) as zero_result_searches,
    count(*) filter (where searches.clicks > 0) as searches_with_click,
    count(*) filter (where searches.outcome = 'purchased') as searches_with_purchase,
    round({{ ratio("count(*) filter (where searches.result_count = 0)", "count(searches.result_count)") }}, 4)
        as zero_result_rate,
    round({{ ratio("count(*) filter (where searches.clicks > 0)", "count(*)") }}, 4) as click_through_rate,
    round({{ ratio("count(*) filter (where searches.outcome = 'purchased')", "count(*)") }}, 4) as purchase_rate,
    round(avg(searches.first_click_position), 2) as average_first_click_position
from {{ ref('stg_gold__search_queries') }} as searches
group by 1, 2
