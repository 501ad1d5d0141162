{# The day analytics are computed as of: the `as_of_date` var when given, otherwise the latest
   order date in the data (today, on a live marketplace; the end of history on generated data). #}
{% macro as_of_date() -%}
    {%- if var('as_of_date', none) -%}
        '{{ var('as_of_date') }}'::date
    {%- else -%}
        (select coalesce(max(order_date), current_date) from {{ ref('stg_silver__sub_orders') }})
    {%- endif -%}
{%- endmacro %}
