{# The 95% Wilson score interval of a proportion, successes out of trials (null without trials):
   (s + z²/2 ± z·√(s(n−s)/n + z²/4)) / (n + z²). Unlike the normal approximation it stays inside
   [0, 1] and keeps a sensible width at 0 or n successes and for small n, which early in an
   experiment is the common case. `bound` is 'lower' or 'upper'. #}
{% macro wilson_interval(successes, trials, bound, z=1.96) -%}
    {%- set sign = '-' if bound == 'lower' else '+' -%}
    case when ({{ trials }}) > 0 then
        (({{ successes }})::numeric + {{ '%.6f' % (z * z / 2) }}
         {{ sign }} {{ z }} * sqrt(({{ successes }})::numeric * (({{ trials }}) - ({{ successes }})) / ({{ trials }})
                              + {{ '%.6f' % (z * z / 4) }}))
        / (({{ trials }}) + {{ '%.6f' % (z * z) }})
    end
{%- endmacro %}
