{# The UTC calendar day of a timestamptz, whatever the session's time zone. #}
{% macro utc_date(column) -%}
    ({{ column }} at time zone 'UTC')::date
{%- endmacro %}

{# A share that is null rather than a division by zero. #}
{% macro ratio(numerator, denominator) -%}
    ({{ numerator }})::numeric / nullif({{ denominator }}, 0)
{%- endmacro %}
