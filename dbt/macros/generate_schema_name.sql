{# Models land in the schema they name (seller_analytics, not analytics_seller_analytics):
   the application and the row-level security functions refer to these schemas by name. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
