select
    category_id,
    parent_id,
    slug,
    name,
    -- the root of the category tree the slug is a path of ("home/kitchen" -> "home")
    split_part(slug, '/', 1) as root_slug
from {{ source('silver', 'categories') }}
where not _deleted
