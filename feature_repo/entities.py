"""Who and what features describe: shoppers, products and sellers (tenants)."""

from feast import Entity, ValueType

user = Entity(
    name="user", join_keys=["user_key"], value_type=ValueType.STRING,
    description="A shopper: the user id, or anon:<anonymous_id> before signing in (as in gold.interactions).")
item = Entity(name="item", join_keys=["product_id"], value_type=ValueType.STRING, description="A product.")
seller = Entity(name="seller", join_keys=["tenant_id"], value_type=ValueType.STRING,
                description="A seller (tenant) of the marketplace.")
