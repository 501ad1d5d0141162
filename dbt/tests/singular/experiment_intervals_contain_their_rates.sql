-- Every experiment rate lies inside its own confidence interval, which lies inside [0, 1].
select experiment, variant
from {{ ref('platform_experiment_results') }}
where not (0 <= click_through_low and click_through_low <= click_through_rate
           and click_through_rate <= click_through_high and click_through_high <= 1)
   or not (0 <= add_to_cart_low and add_to_cart_low <= add_to_cart_rate
           and add_to_cart_rate <= add_to_cart_high and add_to_cart_high <= 1)
   or not (0 <= conversion_low and conversion_low <= conversion_rate
           and conversion_rate <= conversion_high and conversion_high <= 1)
