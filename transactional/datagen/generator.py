"""Pure generation: `generate_marketplace(scale, seed)` builds a whole marketplace in memory from
the behaviour model (transactional.datagen.model) with one numpy Generator, vectorised so a
million SKUs and ten million events fit in minutes and a few GiB. Nothing here touches a
database: transactional.datagen.loader writes the result through the platform's services."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import polars as pl

from transactional.datagen.data import MarketplaceData, dataset_namespace, deterministic_ids
from transactional.datagen.model import HISTORY_END, BehaviourModel, Scale, resolve_scale
from transactional.datagen.vocabulary import (
    CITIES, DESCRIPTION_TEMPLATES, FEATURES, FIRST_NAMES, LAST_NAMES, REVIEW_COMMENTS, ROOTS, STORE_WORDS, leaves,
)

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
END_MS = int(HISTORY_END.timestamp() * 1000)

# Event kinds, named as the shopper events API names them; checkout only marks when an order
# was placed and is not an event of its own.
SEARCH, CLICK, VIEW, ADD_TO_CART, REMOVE_FROM_CART, CHECKOUT, PURCHASE = range(7)
EVENT_TYPES = ("search", "click", "view", "add_to_cart", "remove_from_cart", "checkout", "purchase")
# Sequence numbers inside a session: step k is click 3k+1 (from a search), view 3k+2, add 3k+3.
REMOVE_SEQ, BUNDLE_SEQ, CHECKOUT_SEQ = 10_000, 20_000, 30_000

LEAVES = leaves()


class GroupSampler:
    """Draws, for each requested group, one member with probability proportional to its weight."""

    def __init__(self, groups: np.ndarray, weights: np.ndarray, n_groups: int) -> None:
        order = np.argsort(groups, kind="stable")
        self.members = order
        self.cumulative = np.cumsum(weights[order])
        sorted_groups = groups[order]
        self.start = np.searchsorted(sorted_groups, np.arange(n_groups), "left")
        self.end = np.searchsorted(sorted_groups, np.arange(n_groups), "right")
        before = np.concatenate([[0.0], self.cumulative])
        self.base = before[self.start]
        self.total = before[self.end] - self.base

    def sample(self, groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        target = self.base[groups] + rng.random(len(groups)) * self.total[groups]
        position = np.searchsorted(self.cumulative, target, side="right")
        return self.members[np.clip(position, self.start[groups], self.end[groups] - 1)]


def categorical_rows(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per row of a row-stochastic matrix."""
    cumulative = np.cumsum(probabilities, axis=1)
    draws = rng.random(len(probabilities))[:, None] * cumulative[:, -1:]
    return np.minimum((cumulative < draws).sum(axis=1), probabilities.shape[1] - 1)


@dataclass
class Catalog:
    """The arrays the behaviour model samples from."""

    product_leaf: np.ndarray
    product_band: np.ndarray
    product_quality: np.ndarray
    popularity: np.ndarray
    partner: np.ndarray  # each product's fixed complement (-1: none)
    sku_offset: np.ndarray
    sku_count: np.ndarray
    sku_price: np.ndarray
    sku_tenant: np.ndarray
    by_band: GroupSampler
    by_leaf: GroupSampler
    leaf_by_root: GroupSampler
    leaf_root: np.ndarray
    live_roots: np.ndarray
    complements: np.ndarray  # leaf -> padded complement leaves that have products
    complement_count: np.ndarray


def generate_marketplace(scale: str | int, seed: int, model: BehaviourModel | None = None) -> MarketplaceData:
    model = model or BehaviourModel()
    size = resolve_scale(scale)
    rng = np.random.default_rng(seed)
    namespace = dataset_namespace(size.name, seed)
    categories = _categories()
    tenants = _tenants(rng, size, model, seed)
    warehouses = _warehouses(rng, tenants)
    products, catalog_arrays = _products(rng, size, model, tenants)
    skus = _skus(rng, model, products, catalog_arrays)
    catalog = _catalog(rng, model, products, skus, catalog_arrays)
    inventory = _inventory(rng, skus, warehouses, catalog)
    buyers, users = _buyers(rng, size, model, catalog, seed)
    history = History(rng, size, model, catalog, users, tenants).run(namespace)
    return MarketplaceData(
        scale=size.name, seed=seed, categories=categories, tenants=tenants, warehouses=warehouses,
        products=products.drop("leaf_idx", "band"), skus=skus, inventory=inventory, buyers=buyers, **history,
    )


def _categories() -> pl.DataFrame:
    rows = [(root.slug, root.name, None) for root in ROOTS]
    rows += [(leaf.slug, leaf.name, root.slug) for root, leaf in LEAVES]
    return pl.DataFrame(rows, schema={"slug": pl.String, "name": pl.String, "parent_slug": pl.String}, orient="row")


def _tenants(rng: np.random.Generator, size: Scale, model: BehaviourModel, seed: int) -> pl.DataFrame:
    rank = np.arange(1, size.tenants + 1)
    share = rank ** -model.tenant_zipf_exponent
    share /= share.sum()
    # The largest tenant is named first; store names come from vocabularies, slugs are unique by rank.
    words = rng.integers(len(STORE_WORDS), size=size.tenants)
    owners = rng.integers(len(LAST_NAMES), size=size.tenants)
    names = [f"{LAST_NAMES[o]} {STORE_WORDS[w]}" for o, w in zip(owners, words, strict=True)]
    plan = np.where(rank <= max(1, size.tenants // 10), "enterprise", np.where(rank <= size.tenants * 0.4, "pro", "free"))
    tax = rng.choice(np.array([0.0, 0.05, 0.1, 0.2]), size=size.tenants)
    tag = f"{size.name}-{seed}"
    return pl.DataFrame({
        "external_ref": [f"datagen:{tag}:tenant:{i}" for i in range(size.tenants)],
        "slug": [f"{name.lower().replace(' ', '-')}-{i + 1}-{tag}" for i, name in enumerate(names)],
        "store_name": names,
        "legal_name": [f"{name} Ltd" for name in names],
        "plan": plan,
        "tax_rate": tax,
        "share": share,
        "admin_email": seller_admin_emails(size.name, seed),
    })


def seller_admin_emails(scale: str | int, seed: int) -> list[str]:
    """The sign-in of each generated store's admin (largest store first); the password is the
    loader's DEMO_PASSWORD."""
    size = resolve_scale(scale)
    return [f"admin@store{i + 1}.{size.name}-{seed}.example.com" for i in range(size.tenants)]


def _warehouses(rng: np.random.Generator, tenants: pl.DataFrame) -> pl.DataFrame:
    # Larger tenants run more warehouses (one to three).
    counts = 1 + (tenants["share"].to_numpy() > 0.05) + (tenants["share"].to_numpy() > 0.15)
    tenant_idx = np.repeat(np.arange(tenants.height), counts)
    number = np.concatenate([np.arange(c) for c in counts])
    cities = rng.integers(len(CITIES), size=len(tenant_idx))
    return pl.DataFrame({
        "tenant_idx": tenant_idx.astype(np.int32),
        "code": [f"WH-{n + 1}" for n in number],
        "name": [f"{CITIES[c]} warehouse" for c in cities],
        "city": [CITIES[c] for c in cities],
    })


def _products(rng, size: Scale, model: BehaviourModel, tenants: pl.DataFrame):
    n, n_tenants, n_roots = size.products, tenants.height, len(ROOTS)
    share = tenants["share"].to_numpy()
    tenant = rng.choice(n_tenants, size=n, p=share)
    tenant[: min(n, n_tenants)] = np.arange(min(n, n_tenants))  # every tenant sells something
    # Tenants specialise: each sells in a few root categories (bigger tenants in more).
    focus_count = np.minimum(n_roots, 1 + rng.poisson(1.0 + 8 * share))
    focus = np.array([rng.permutation(n_roots) for _ in range(n_tenants)])
    root = focus[tenant, (rng.random(n) * focus_count[tenant]).astype(int)]
    leaf_start = np.cumsum([0] + [len(r.leaves) for r in ROOTS])
    leaf = leaf_start[root] + (rng.random(n) * np.diff(leaf_start)[root]).astype(int)

    quality = rng.normal(size=n)
    rank = rng.permutation(n) + 1
    popularity = rank ** -model.popularity_exponent * np.exp(model.quality_popularity_weight * quality)
    median_price = np.array([lf.median_price for _, lf in LEAVES])
    price_cents = np.maximum(100, np.round(median_price[leaf] * np.exp(rng.normal(0, model.price_sigma, n)) * 100))
    band = _price_bands(leaf, price_cents, model.price_bands)

    brand_pick, adjective_pick, noun_pick = rng.integers(1 << 30, size=(3, n))
    model_code = rng.integers(10, 99, size=n)
    template_pick, feature_pick = rng.integers(1 << 30, size=(2, n))
    letters = rng.integers(0, 26, size=n)
    titles, descriptions, brands = [], [], []
    for i in range(n):
        r, lf = ROOTS[root[i]], LEAVES[leaf[i]][1]
        brand = r.brands[brand_pick[i] % len(r.brands)]
        adjective = r.adjectives[adjective_pick[i] % len(r.adjectives)]
        noun = lf.nouns[noun_pick[i] % len(lf.nouns)]
        title = f"{brand} {adjective} {noun} {chr(65 + letters[i])}{model_code[i]}"
        descriptions.append(DESCRIPTION_TEMPLATES[template_pick[i] % len(DESCRIPTION_TEMPLATES)].format(
            title=title, adjective=adjective, brand=brand, noun=noun,
            feature=FEATURES[feature_pick[i] % len(FEATURES)]))
        titles.append(title)
        brands.append(brand)
    created = END_MS - size.days * DAY_MS - rng.integers(1, 365, size=n) * DAY_MS
    products = pl.DataFrame({
        "tenant_idx": tenant.astype(np.int32),
        "external_ref": [f"P{i:07d}" for i in range(n)],
        "category_slug": [LEAVES[i][1].slug for i in leaf],
        "title": titles,
        "description": descriptions,
        "brand": brands,
        "attributes": np.array(['{"price_tier": "budget"}', '{"price_tier": "standard"}',
                                '{"price_tier": "premium"}'])[np.minimum(band * 3 // model.price_bands, 2)],
        "price_cents": price_cents.astype(np.int64),
        "quality": quality,
        "popularity": popularity,
        "created_at": pl.Series(created, dtype=pl.Int64).cast(pl.Datetime("ms", "UTC")),
        "leaf_idx": leaf.astype(np.int32),
        "band": band.astype(np.int8),
    })
    return products, {"leaf": leaf, "band": band, "quality": quality, "popularity": popularity}


def _price_bands(leaf: np.ndarray, price: np.ndarray, bands: int) -> np.ndarray:
    """Each product's price quintile (band) within its leaf category."""
    order = np.lexsort((price, leaf))
    sorted_leaf = leaf[order]
    start = np.searchsorted(sorted_leaf, sorted_leaf, "left")
    count = np.searchsorted(sorted_leaf, sorted_leaf, "right") - start
    band = np.empty(len(leaf), dtype=np.int64)
    band[order] = ((np.arange(len(leaf)) - start) * bands) // count
    return band


def _skus(rng, model: BehaviourModel, products: pl.DataFrame, arrays) -> pl.DataFrame:
    """One to three SKUs per product, varying by the leaf's first attribute; prices close to the product's."""
    leaf = arrays["leaf"]
    n = len(leaf)
    option_counts = np.array([len(next(iter(lf.attributes.values()), ())) for _, lf in LEAVES])
    wanted = 1 + rng.binomial(model.max_skus_per_product - 1, 0.5, size=n)
    count = np.maximum(1, np.minimum(wanted, option_counts[leaf]))
    product_idx = np.repeat(np.arange(n), count)
    variant = np.concatenate([np.arange(c) for c in count]) if n else np.array([], dtype=int)
    first_option = rng.integers(1 << 30, size=n)
    fixed_pick = rng.integers(1 << 30, size=n)
    base_price = products["price_cents"].to_numpy()
    price = np.round(base_price[product_idx] * (1 + 0.08 * variant)).astype(np.int64)
    attributes = []
    for p, v in zip(product_idx, variant, strict=True):
        options = list(LEAVES[leaf[p]][1].attributes.items())
        chosen = {}
        for k, (name, values) in enumerate(options):
            pick = first_option[p] + v if k == 0 else fixed_pick[p] + k
            chosen[name] = values[pick % len(values)]
        attributes.append(json.dumps(chosen, sort_keys=True))
    return pl.DataFrame({
        "product_idx": product_idx.astype(np.int32),
        "tenant_idx": products["tenant_idx"].to_numpy()[product_idx],
        "sku_code": [f"P{p:07d}-{v + 1}" for p, v in zip(product_idx, variant, strict=True)],
        "price_cents": price,
        "attributes": attributes,
        "weight_grams": np.round(np.exp(rng.normal(6.2, 0.9, len(product_idx)))).astype(np.int32),
    })


def _catalog(rng, model: BehaviourModel, products: pl.DataFrame, skus: pl.DataFrame, arrays) -> Catalog:
    leaf, band, popularity = arrays["leaf"], arrays["band"], arrays["popularity"]
    n_leaves, bands = len(LEAVES), model.price_bands
    by_leaf = GroupSampler(leaf, popularity, n_leaves)
    live = by_leaf.total > 0
    leaf_root = np.array([ROOTS.index(root) for root, _ in LEAVES])
    leaf_weight = np.where(live, np.sqrt(np.maximum(by_leaf.total, 0)), 0.0)
    slug_index = {lf.slug: i for i, (_, lf) in enumerate(LEAVES)}
    complement_lists = [[slug_index[s] for s in lf.complements if live[slug_index[s]]] for _, lf in LEAVES]
    width = max(1, max(len(c) for c in complement_lists))
    complements = np.array([c + [-1] * (width - len(c)) for c in complement_lists])
    complement_count = np.array([len(c) for c in complement_lists])
    # Each product's complement partner is fixed: a popular item of one of its complement leaves.
    partner = np.full(len(leaf), -1)
    has = complement_count[leaf] > 0
    partner_leaf = complements[leaf[has], (rng.random(has.sum()) * complement_count[leaf[has]]).astype(int)]
    partner[has] = by_leaf.sample(partner_leaf, rng)
    sku_product = skus["product_idx"].to_numpy()
    sku_count = np.bincount(sku_product, minlength=len(leaf))
    return Catalog(
        product_leaf=leaf, product_band=band, product_quality=arrays["quality"], popularity=popularity,
        partner=partner, sku_offset=np.concatenate([[0], np.cumsum(sku_count)[:-1]]), sku_count=sku_count,
        sku_price=skus["price_cents"].to_numpy(), sku_tenant=skus["tenant_idx"].to_numpy(),
        by_band=GroupSampler(leaf * bands + band, popularity, n_leaves * bands), by_leaf=by_leaf,
        leaf_by_root=GroupSampler(leaf_root, leaf_weight, len(ROOTS)), leaf_root=leaf_root,
        live_roots=np.unique(leaf_root[live]), complements=complements, complement_count=complement_count,
    )


def _inventory(rng, skus: pl.DataFrame, warehouses: pl.DataFrame, catalog: Catalog) -> pl.DataFrame:
    """Each SKU is stocked in one of its tenant's warehouses; popular items carry more stock."""
    sku_tenant = skus["tenant_idx"].to_numpy()
    wh_tenant = warehouses["tenant_idx"].to_numpy()
    first = np.searchsorted(wh_tenant, np.arange(wh_tenant.max() + 1))
    count = np.bincount(wh_tenant)
    warehouse = first[sku_tenant] + np.arange(len(sku_tenant)) % count[sku_tenant]
    popularity = catalog.popularity[skus["product_idx"].to_numpy()]
    available = 5 + rng.poisson(20 + 400 * popularity / popularity.max())
    return pl.DataFrame({"sku_idx": np.arange(len(sku_tenant), dtype=np.int32),
                         "warehouse_idx": warehouse.astype(np.int32), "available": available.astype(np.int32)})


@dataclass
class Users:
    root_preference: np.ndarray  # users x roots
    band_centre: np.ndarray
    activity: np.ndarray
    city: np.ndarray


def _buyers(rng, size: Scale, model: BehaviourModel, catalog: Catalog, seed: int) -> tuple[pl.DataFrame, Users]:
    n = size.buyers
    preference = np.zeros((n, len(ROOTS)))
    preference[:, catalog.live_roots] = rng.dirichlet(np.full(len(catalog.live_roots), model.category_concentration), n)
    band_centre = np.clip((model.price_bands - 1) / 2 + 1.1 * rng.normal(size=n), 0, model.price_bands - 1)
    activity = rng.lognormal(0, model.activity_sigma, n)
    first, last = rng.integers(len(FIRST_NAMES), size=n), rng.integers(len(LAST_NAMES), size=n)
    city = rng.integers(len(CITIES), size=n)
    created = END_MS - size.days * DAY_MS - rng.integers(1, 720, size=n) * DAY_MS
    tag = f"{size.name}-{seed}"
    buyers = pl.DataFrame({
        "external_ref": [f"datagen:{tag}:buyer:{i}" for i in range(n)],
        "email": [f"{FIRST_NAMES[f].lower()}.{LAST_NAMES[s].lower()}.{i}@{tag}.shoppers.example.com"
                  for i, (f, s) in enumerate(zip(first, last, strict=True))],
        "full_name": [f"{FIRST_NAMES[f]} {LAST_NAMES[s]}" for f, s in zip(first, last, strict=True)],
        "city": [CITIES[c] for c in city],
        "created_at": pl.Series(created, dtype=pl.Int64).cast(pl.Datetime("ms", "UTC")),
    })
    return buyers, Users(preference, band_centre, activity, city)


class History:
    """Sessions, events, orders, payments and reviews over `size.days` days ending at HISTORY_END."""

    def __init__(self, rng, size: Scale, model: BehaviourModel, catalog: Catalog, users: Users,
                 tenants: pl.DataFrame) -> None:
        self.rng, self.size, self.model, self.catalog, self.users, self.tenants = rng, size, model, catalog, users, tenants
        self.start_ms = END_MS - size.days * DAY_MS
        self.pending: list[dict[str, np.ndarray]] = []  # events without timestamps yet
        self.placed: list[dict[str, np.ndarray]] = []

    def run(self, namespace) -> dict[str, pl.DataFrame]:
        m = self.model
        human_events = m.mean_session_views * (1 + m.add_to_cart_base * 2) + m.search_start_probability + 0.5
        per_session = (1 - m.bot_session_share) * human_events + m.bot_session_share * m.mean_bot_session_views
        n_sessions = max(10, int(self.size.events / per_session))
        is_bot = self.rng.random(n_sessions) < m.bot_session_share
        user = np.where(is_bot, -1, self.rng.choice(len(self.users.activity), size=n_sessions,
                                                    p=self.users.activity / self.users.activity.sum()))
        start = self._session_starts(is_bot)
        self.session_user, self.session_start, self.session_bot = user, start, is_bot
        self._bot_views(np.nonzero(is_bot)[0])
        cart = self._human_sessions(np.nonzero(~is_bot)[0])
        orders = self._checkout(cart)
        self._place_times()
        orders = self._settle(orders)
        repeat = self._repeat_sessions(orders)
        if len(repeat["session"]):
            repeat_orders = self._checkout(repeat, all_sessions_buy=True)
            self._place_times()
            orders = {k: np.concatenate([orders[k], v]) for k, v in self._settle(repeat_orders).items()}
        return self._tables(orders, namespace)

    # --- sessions -----------------------------------------------------------------------------
    def _session_starts(self, is_bot: np.ndarray) -> np.ndarray:
        m, rng, n = self.model, self.rng, len(is_bot)
        days = np.arange(self.size.days)
        weekday = (HISTORY_END.weekday() - self.size.days + days) % 7
        day_weight = np.asarray(m.weekday_weights)[weekday]
        hour_weight = np.asarray(m.hour_weights)
        day = np.where(is_bot, rng.integers(self.size.days, size=n), rng.choice(days, size=n, p=day_weight / day_weight.sum()))
        hour = np.where(is_bot, rng.integers(24, size=n), rng.choice(24, size=n, p=hour_weight / hour_weight.sum()))
        return self.start_ms + day * DAY_MS + hour * HOUR_MS + rng.integers(0, HOUR_MS - 10 * 60_000, size=n)

    def _emit(self, session, seq, kind, product=None, sku=None, quantity=None, query=None, position=None,
              at=None) -> None:
        n = len(session)
        none = np.full(n, -1)
        events = {
            "session": session.astype(np.int64), "seq": np.broadcast_to(seq, n).astype(np.int64),
            "kind": np.full(n, kind, dtype=np.int8),
            "product": none if product is None else product, "sku": none if sku is None else sku,
            "quantity": none if quantity is None else quantity,
            "query": none if query is None else query, "position": none if position is None else position,
        }
        if at is None:
            self.pending.append(events)
        else:
            self.placed.append(events | {"at": at})

    def _bot_views(self, sessions: np.ndarray) -> None:
        m = self.model
        length = np.clip(self.rng.geometric(1 / m.mean_bot_session_views, len(sessions)), 5, m.max_bot_session_views)
        session = np.repeat(sessions, length)
        step = np.concatenate([np.arange(k) for k in length]) if len(length) else np.array([], dtype=int)
        self._emit(session, 3 * step + 2, VIEW, product=self.rng.integers(len(self.catalog.popularity), size=len(session)))

    def _user_band(self, users: np.ndarray) -> np.ndarray:
        m = self.model
        noisy = self.users.band_centre[users] + self.rng.normal(0, m.price_band_spread, len(users))
        return np.clip(np.round(noisy), 0, m.price_bands - 1).astype(np.int64)

    def _preferred_leaf(self, users: np.ndarray) -> np.ndarray:
        root = categorical_rows(self.users.root_preference[users], self.rng)
        return self.catalog.leaf_by_root.sample(root, self.rng)

    def _pick(self, leaf: np.ndarray, band: np.ndarray) -> np.ndarray:
        """An item of (leaf, price band) by popularity, or of the leaf when that band is empty."""
        c = self.catalog
        group = leaf * self.model.price_bands + band
        banded = c.by_band.total[group] > 0
        item = np.empty(len(leaf), dtype=np.int64)
        item[banded] = c.by_band.sample(group[banded], self.rng)
        item[~banded] = c.by_leaf.sample(leaf[~banded], self.rng)
        return item

    def _next_view(self, users: np.ndarray, current: np.ndarray) -> np.ndarray:
        """The Markov step: what is viewed next depends on what is viewed now."""
        m, c, rng = self.model, self.catalog, self.rng
        r = rng.random(len(users))
        leaf = self._preferred_leaf(users)
        band = self._user_band(users)
        same = (r >= m.noise_probability) & (r < m.noise_probability + m.same_leaf_probability)
        leaf[same] = c.product_leaf[current[same]]
        band[same] = np.clip(c.product_band[current[same]] + rng.choice([-1, 0, 1], same.sum(), p=[0.2, 0.6, 0.2]),
                             0, m.price_bands - 1)
        jump_from = m.noise_probability + m.same_leaf_probability
        jump = (r >= jump_from) & (r < jump_from + m.complement_jump_probability)
        jump &= c.complement_count[c.product_leaf[current]] > 0
        from_leaf = c.product_leaf[current[jump]]
        leaf[jump] = c.complements[from_leaf, (rng.random(jump.sum()) * c.complement_count[from_leaf]).astype(int)]
        item = self._pick(leaf, band)
        noise = r < m.noise_probability
        item[noise] = rng.integers(len(c.popularity), size=noise.sum())
        return item

    def _human_sessions(self, sessions: np.ndarray) -> dict[str, np.ndarray]:
        """Views step by step across all sessions at once; returns the items left in each cart."""
        m, c, rng = self.model, self.catalog, self.rng
        length = np.minimum(rng.geometric(1 / m.mean_session_views, len(sessions)), m.max_session_views)
        searching = rng.random(len(sessions)) < m.search_start_probability
        users = self.session_user[sessions]
        first_leaf = self._preferred_leaf(users)
        self._emit(sessions[searching], 0, SEARCH, query=first_leaf[searching])
        current = self._pick(first_leaf, self._user_band(users))
        adds = []
        for step in range(m.max_session_views):
            alive = length > step
            if not alive.any():
                break
            if step:
                current[alive] = self._next_view(users[alive], current[alive])
            s, item = sessions[alive], current[alive]
            clicked = searching[alive] & (step < 3)
            self._emit(s[clicked], 3 * step + 1, CLICK, product=item[clicked], query=first_leaf[alive][clicked],
                       position=rng.geometric(0.35, clicked.sum()) - 1)
            self._emit(s, 3 * step + 2, VIEW, product=item.copy())
            match = np.abs(c.product_band[item] - self.users.band_centre[users[alive]]) < 1
            p_add = m.add_to_cart_base * np.exp(m.add_to_cart_quality_weight * c.product_quality[item])
            p_add *= np.where(match, m.price_match_boost, 1.0)
            added = rng.random(len(item)) < np.minimum(p_add, 0.6)
            quantity = rng.choice([1, 2, 3], added.sum(), p=[0.85, 0.12, 0.03])
            sku = self._sku_of(item[added])
            self._emit(s[added], 3 * step + 3, ADD_TO_CART, product=item[added], sku=sku, quantity=quantity)
            adds.append((s[added], item[added], sku, quantity, np.full(added.sum(), step)))
        session, item, sku, quantity, step = (np.concatenate(a) for a in zip(*adds, strict=True))
        removed = rng.random(len(item)) < m.remove_from_cart_probability
        self._emit(session[removed], REMOVE_SEQ + step[removed], REMOVE_FROM_CART, product=item[removed],
                   sku=sku[removed], quantity=quantity[removed])
        kept = ~removed
        return {"session": session[kept], "product": item[kept], "sku": sku[kept], "quantity": quantity[kept]}

    def _sku_of(self, product: np.ndarray) -> np.ndarray:
        """One of the product's SKUs, uniformly."""
        c = self.catalog
        return c.sku_offset[product] + self.rng.integers(1 << 30, size=len(product)) % c.sku_count[product]

    # --- orders -------------------------------------------------------------------------------
    def _checkout(self, cart: dict[str, np.ndarray], all_sessions_buy: bool = False) -> dict[str, np.ndarray]:
        """Sessions with a cart check out; each item may bring its complement partner along."""
        m, c, rng = self.model, self.catalog, self.rng
        order = np.lexsort((cart["product"], cart["session"]))
        session, product, sku, quantity = (cart[k][order] for k in ("session", "product", "sku", "quantity"))
        first = np.ones(len(session), dtype=bool)
        first[1:] = (session[1:] != session[:-1]) | (product[1:] != product[:-1])
        session, product, sku, quantity = session[first], product[first], sku[first], quantity[first]
        buying = np.unique(session)
        if not all_sessions_buy:
            buying = buying[rng.random(len(buying)) < m.checkout_probability]
        keep = np.isin(session, buying)
        session, product, sku, quantity = session[keep], product[keep], sku[keep], quantity[keep]
        n_products = len(c.popularity)
        partner = c.partner[product]
        bundle = (partner >= 0) & (rng.random(len(product)) < m.bundle_probability)
        bundle &= ~np.isin(session * n_products + partner, session * n_products + product)
        b_session, b_product = session[bundle], partner[bundle]
        pair = np.unique(b_session * n_products + b_product, return_index=True)[1]
        b_session, b_product = b_session[pair], b_product[pair]
        b_sku, b_quantity = self._sku_of(b_product), np.ones_like(b_product)
        rank = np.arange(len(b_session))
        self._emit(b_session, BUNDLE_SEQ + 2 * rank, VIEW, product=b_product)
        self._emit(b_session, BUNDLE_SEQ + 2 * rank + 1, ADD_TO_CART, product=b_product, sku=b_sku, quantity=b_quantity)
        self._emit(buying, CHECKOUT_SEQ, CHECKOUT)
        columns = {"session": (session, b_session), "product": (product, b_product), "sku": (sku, b_sku),
                   "quantity": (quantity, b_quantity)}
        merged = {k: np.concatenate(v) for k, v in columns.items()}
        order = np.argsort(merged["session"], kind="stable")
        return {k: v[order] for k, v in merged.items()} | {"buying": buying}

    def _place_times(self) -> None:
        """Timestamps for the pending events: session start plus exponential gaps, in sequence."""
        events = {k: np.concatenate([e[k] for e in self.pending]) for k in self.pending[0]}
        self.pending = []
        order = np.lexsort((events["seq"], events["session"]))
        events = {k: v[order] for k, v in events.items()}
        session = events["session"]
        bot = self.session_bot[session]
        mean_gap = np.where(bot, self.model.bot_seconds_between_events, self.model.mean_seconds_between_events) * 1000
        gap = np.round(self.rng.exponential(1.0, len(session)) * mean_gap).astype(np.int64) + 500
        first = np.searchsorted(session, session, "left")
        elapsed = np.cumsum(gap)
        elapsed -= elapsed[first]
        self.placed.append(events | {"at": self.session_start[session] + elapsed})

    def _settle(self, cart: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Payments (declines, one retry), the lifecycle reached by HISTORY_END, and purchase events."""
        m, rng = self.model, self.rng
        buying = cart["buying"]
        t = self.placed[-1]
        checkout_mask = t["kind"] == CHECKOUT
        checkout_at = dict(zip(t["session"][checkout_mask].tolist(), t["at"][checkout_mask].tolist(), strict=True))
        placed = np.array([checkout_at[s] for s in buying.tolist()], dtype=np.int64)
        n = len(buying)
        first_declined = rng.random(n) < m.decline_probability
        retry_ok = rng.random(n) < m.retry_success_probability
        paid = ~first_declined | retry_ok
        retry_at = placed + rng.integers(60_000, 300_000, size=n)
        paid_at = np.where(first_declined, retry_at, placed + 4_000)
        cancelled = paid & (rng.random(n) < m.cancel_probability)
        packed_at = paid_at + rng.integers(4 * HOUR_MS, 24 * HOUR_MS, size=n)
        shipped_at = packed_at + rng.integers(12 * HOUR_MS, 48 * HOUR_MS, size=n)
        delivered_at = shipped_at + rng.integers(DAY_MS, 4 * DAY_MS, size=n)
        refunded = paid & ~cancelled & (rng.random(n) < m.refund_probability)
        returned_at = delivered_at + rng.integers(2 * DAY_MS, 10 * DAY_MS, size=n)
        refunded_at = returned_at + rng.integers(2 * DAY_MS, 6 * DAY_MS, size=n)
        cancelled_at = paid_at + rng.integers(HOUR_MS, 4 * HOUR_MS, size=n)
        paid_at_of = dict(zip(buying.tolist(), np.where(paid, paid_at, -1).tolist(), strict=True))
        item_paid_at = np.array([paid_at_of[s] for s in cart["session"].tolist()], dtype=np.int64)
        bought = item_paid_at >= 0
        self._emit(cart["session"][bought], CHECKOUT_SEQ + 1, PURCHASE, product=cart["product"][bought],
                   sku=cart["sku"][bought], quantity=cart["quantity"][bought], at=item_paid_at[bought])

        def reached(at: np.ndarray, condition: np.ndarray) -> np.ndarray:
            return np.where(condition & (at <= END_MS), at, -1)

        lifecycle = ~cancelled & paid
        return {
            "session": buying, "paid": paid, "placed_at": placed, "first_declined": first_declined, "retry_at": retry_at,
            "paid_at": reached(paid_at, paid), "packed_at": reached(packed_at, lifecycle),
            "shipped_at": reached(shipped_at, lifecycle), "delivered_at": reached(delivered_at, lifecycle),
            "cancelled_at": reached(cancelled_at, cancelled), "return_requested_at": reached(returned_at, refunded),
            "refunded_at": reached(refunded_at, refunded),
            "item_session": cart["session"], "item_product": cart["product"], "item_quantity": cart["quantity"],
            "item_sku": cart["sku"],
        }

    def _repeat_sessions(self, orders: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Consumables bought in a delivered order come back as a short re-purchase session."""
        m, c, rng = self.model, self.catalog, self.rng
        consumable = np.array([lf.consumable for _, lf in LEAVES])
        delivered_at = dict(zip(orders["session"].tolist(), orders["delivered_at"].tolist(), strict=True))
        item_delivered = np.array([delivered_at[s] for s in orders["item_session"]], dtype=np.int64)
        candidates = (item_delivered > 0) & consumable[c.product_leaf[orders["item_product"]]]
        candidates &= rng.random(len(candidates)) < m.repeat_probability
        delay = rng.gamma(m.repeat_delay_days_shape, m.repeat_delay_days_scale, len(candidates)) * DAY_MS
        when = item_delivered + delay.astype(np.int64)
        candidates &= when < END_MS - HOUR_MS
        product, sku = orders["item_product"][candidates], orders["item_sku"][candidates]
        user = self.session_user[orders["item_session"][candidates]]
        new = len(self.session_user) + np.arange(len(product))
        self.session_user = np.concatenate([self.session_user, user])
        self.session_start = np.concatenate([self.session_start, when[candidates]])
        self.session_bot = np.concatenate([self.session_bot, np.zeros(len(product), dtype=bool)])
        self._emit(new, 2, VIEW, product=product)
        quantity = np.ones_like(product)
        self._emit(new, 3, ADD_TO_CART, product=product, sku=sku, quantity=quantity)
        return {"session": new, "product": product, "sku": sku, "quantity": quantity}

    # --- tables -------------------------------------------------------------------------------
    def _tables(self, orders: dict[str, np.ndarray], namespace) -> dict[str, pl.DataFrame]:
        events = self._event_table()
        order_table, sub_orders, items, payments = self._order_tables(orders, namespace)
        return {"events": events, "orders": order_table, "sub_orders": sub_orders, "order_items": items,
                "payments": payments, "reviews": self._reviews(order_table, items, namespace)}

    def _event_table(self) -> pl.DataFrame:
        t = {k: np.concatenate([e[k] for e in self.placed]) for k in self.placed[0]}
        shown = t["kind"] != CHECKOUT
        t = {k: v[shown] for k, v in t.items()}
        order = np.lexsort((t["seq"], t["session"], t["at"]))
        t = {k: v[order] for k, v in t.items()}
        nouns = [lf.nouns[0] for _, lf in LEAVES]
        # A search names a leaf category and finds that leaf's products: the behaviour model has
        # no failed searches, so generated zero-result searches are leaves with no products.
        leaf_products = np.bincount(self.catalog.product_leaf, minlength=len(LEAVES))
        frame = pl.DataFrame({
            "session_idx": t["session"].astype(np.int32),
            "user_idx": self.session_user[t["session"]].astype(np.int32),
            "bot": self.session_bot[t["session"]],
            "event_type": np.array(EVENT_TYPES)[t["kind"]],
            "product_idx": t["product"].astype(np.int32),
            "sku_idx": t["sku"].astype(np.int32),
            "query_leaf": t["query"].astype(np.int32),
            "position": t["position"].astype(np.int32),
            "quantity": t["quantity"].astype(np.int32),
            "result_count": np.where(t["kind"] == SEARCH, leaf_products[np.maximum(t["query"], 0)], -1).astype(np.int32),
            "occurred_at": t["at"],
        })
        absent_as_null = [pl.when(pl.col(name) >= 0).then(pl.col(name)).alias(name)
                          for name in ("user_idx", "product_idx", "sku_idx", "position", "quantity", "result_count")]
        return frame.with_columns(
            *absent_as_null,
            pl.when(pl.col("query_leaf") >= 0).then(
                pl.col("query_leaf").replace_strict(list(range(len(nouns))), nouns, default=None)
            ).alias("query"),
            pl.col("occurred_at").cast(pl.Datetime("ms", "UTC")),
        ).drop("query_leaf")

    def _order_tables(self, orders: dict[str, np.ndarray], namespace):
        c = self.catalog
        tenants = self.tenants
        n = len(orders["session"])
        order_idx_of_session = {s: i for i, s in enumerate(orders["session"].tolist())}
        item_order = np.array([order_idx_of_session[s] for s in orders["item_session"].tolist()], dtype=np.int64)
        sku = orders["item_sku"]
        tenant = c.sku_tenant[sku]
        unit = c.sku_price[sku]

        status = np.where(orders["paid"], "PAYMENT_PENDING", "PAYMENT_FAILED").astype(object)
        for column, name in (("paid_at", "PAID"), ("packed_at", "PACKED"), ("shipped_at", "SHIPPED"),
                             ("delivered_at", "DELIVERED"), ("cancelled_at", "CANCELLED"),
                             ("return_requested_at", "RETURN_REQUESTED"), ("refunded_at", "REFUNDED")):
            status[orders[column] >= 0] = name
        time_columns = ["placed_at", "paid_at", "packed_at", "shipped_at", "delivered_at", "cancelled_at",
                        "return_requested_at", "refunded_at"]
        order_table = pl.DataFrame({
            "id": deterministic_ids(namespace, "order", n),
            "buyer_idx": self.session_user[orders["session"]].astype(np.int32),
            "session_idx": orders["session"].astype(np.int32),
            "status": status.astype(str),
            "shipping_method": np.where(self.rng.random(n) < 0.1, "express", "standard"),
            "payment_method": np.where(self.rng.random(n) < 0.25, "wallet", "card"),
            **{col: pl.Series(orders[col], dtype=pl.Int64) for col in time_columns},
        }).with_columns([
            pl.when(pl.col(col) >= 0).then(pl.col(col)).cast(pl.Datetime("ms", "UTC")).alias(col) for col in time_columns
        ])
        items = pl.DataFrame({
            "order_idx": item_order.astype(np.int32),
            "product_idx": orders["item_product"].astype(np.int32),
            "sku_idx": sku.astype(np.int32),
            "tenant_idx": tenant.astype(np.int32),
            "quantity": orders["item_quantity"].astype(np.int32),
            "unit_price_cents": unit.astype(np.int64),
        }).sort("order_idx", "tenant_idx", "product_idx", maintain_order=True).with_row_index("item_idx")
        tax_rate = pl.DataFrame({"tenant_idx": np.arange(tenants.height, dtype=np.int32),
                                 "tax_rate": tenants["tax_rate"].to_numpy()})
        sub_orders = (
            items.with_columns(line=pl.col("quantity") * pl.col("unit_price_cents"))
            .group_by("order_idx", "tenant_idx", maintain_order=True)
            .agg(items_total_cents=pl.col("line").sum())
            .join(tax_rate, on="tenant_idx", how="left", maintain_order="left")
            .with_columns(
                tax_total_cents=(pl.col("items_total_cents") * pl.col("tax_rate")).round().cast(pl.Int64),
                shipping_total_cents=pl.when(pl.col("items_total_cents") >= 5000).then(0).otherwise(499).cast(pl.Int64),
                commission_cents=(pl.col("items_total_cents") / 10).round().cast(pl.Int64),
            )
            .drop("tax_rate")
        )
        totals = sub_orders.group_by("order_idx").agg(
            amount=(pl.col("items_total_cents") + pl.col("tax_total_cents") + pl.col("shipping_total_cents")).sum())
        amount = totals.sort("order_idx")["amount"].to_numpy()
        payments = self._payments(orders, amount, order_table["payment_method"].to_numpy())
        return order_table, sub_orders, items, payments

    def _payments(self, orders, amount: np.ndarray, method: np.ndarray) -> pl.DataFrame:
        n = len(amount)
        declined = orders["first_declined"]
        idx = np.arange(n)
        first_status = np.where(declined, "failed", np.where(orders["refunded_at"] >= 0, "refunded", "captured"))
        retry_status = np.where(orders["paid_at"] >= 0,
                                np.where(orders["refunded_at"] >= 0, "refunded", "captured"), "failed")
        order_idx = np.concatenate([idx, idx[declined]])
        status = np.concatenate([first_status, retry_status[declined]])
        created = np.concatenate([orders["placed_at"] + 2_000, orders["retry_at"][declined]])
        frame = pl.DataFrame({
            "order_idx": order_idx.astype(np.int32),
            "attempt": np.concatenate([np.ones(n), np.full(declined.sum(), 2)]).astype(np.int16),
            "status": status,
            "method": method[order_idx],
            "amount_cents": amount[order_idx],
            "created_at": pl.Series(created, dtype=pl.Int64).cast(pl.Datetime("ms", "UTC")),
        })
        return frame.with_columns(
            failure_reason=pl.when(pl.col("status") == "failed").then(pl.lit("card_declined")),
        ).sort("order_idx", "attempt")

    def _reviews(self, orders: pl.DataFrame, items: pl.DataFrame, namespace) -> pl.DataFrame:
        m, c, rng = self.model, self.catalog, self.rng
        delivered = orders["delivered_at"].cast(pl.Int64).fill_null(-1).to_numpy()
        item_order = items["order_idx"].to_numpy()
        product = items["product_idx"].to_numpy()
        buyer = orders["buyer_idx"].to_numpy()[item_order]
        written = delivered[item_order] + rng.integers(DAY_MS, 14 * DAY_MS, size=len(item_order))
        reviewed = (delivered[item_order] >= 0) & (written <= END_MS) & (rng.random(len(item_order)) < m.review_probability)
        match = np.abs(c.product_band[product] - self.users.band_centre[buyer]) < 1
        score = 3.6 + 0.9 * c.product_quality[product] + 0.4 * match + rng.normal(0, 0.8, len(product))
        rating = np.clip(np.round(score), 1, 5).astype(np.int16)
        comment_pick = rng.integers(1 << 30, size=len(product))
        frame = pl.DataFrame({
            "item_idx": items["item_idx"].to_numpy(), "buyer_idx": buyer.astype(np.int32),
            "product_idx": product.astype(np.int32), "rating": rating, "pick": comment_pick,
            "created_at": written,
        }).filter(pl.Series(reviewed)).unique(["buyer_idx", "product_idx"], keep="first", maintain_order=True)
        comments = [REVIEW_COMMENTS[r][p % len(REVIEW_COMMENTS[r])] for r, p in
                    zip(frame["rating"].to_list(), frame["pick"].to_list(), strict=True)]
        return frame.with_columns(
            id=pl.Series(deterministic_ids(namespace, "review", frame.height)),
            comment=pl.Series(comments, dtype=pl.String),
            created_at=pl.col("created_at").cast(pl.Datetime("ms", "UTC")),
        ).drop("pick").select("id", "item_idx", "buyer_idx", "product_idx", "rating", "comment", "created_at")
