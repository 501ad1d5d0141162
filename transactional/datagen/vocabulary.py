"""Per-category vocabularies the generator draws readable catalog text from.

Each root category has brands and adjectives; each leaf has the nouns its titles use, the
attributes its SKUs vary by, a typical price (the median of a log-normal), whether shoppers
re-buy it (consumable), and the leaves whose items are bought with it (complements).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Leaf:
    slug: str
    name: str
    nouns: tuple[str, ...]
    median_price: float
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    consumable: bool = False
    complements: tuple[str, ...] = ()


@dataclass(frozen=True)
class Root:
    slug: str
    name: str
    brands: tuple[str, ...]
    adjectives: tuple[str, ...]
    leaves: tuple[Leaf, ...]


COLOURS = ("black", "white", "grey", "navy", "red", "green", "blue", "beige", "pink", "olive")
SIZES = ("XS", "S", "M", "L", "XL")
MATERIALS = ("cotton", "linen", "wool", "polyester", "leather", "denim")

ROOTS: tuple[Root, ...] = (
    Root("electronics", "Electronics", ("Voltra", "Nexon", "Kairo", "Lumina", "Aptek", "Sonique", "Zentro"),
         ("wireless", "compact", "smart", "portable", "ultra-slim", "noise-cancelling", "pro"), (
        Leaf("smartphones", "Smartphones", ("smartphone", "phone"), 420.0,
             {"storage": ("64 GB", "128 GB", "256 GB"), "colour": ("black", "silver", "blue")},
             complements=("phone-cases", "chargers")),
        Leaf("phone-cases", "Phone cases", ("phone case", "bumper case", "folio case"), 15.0,
             {"colour": COLOURS[:6]}, complements=("smartphones",)),
        Leaf("chargers", "Chargers and cables", ("fast charger", "USB-C cable", "power bank"), 22.0,
             {"length": ("1 m", "2 m")}, complements=("smartphones", "laptops")),
        Leaf("headphones", "Headphones", ("headphones", "earbuds", "headset"), 85.0,
             {"colour": ("black", "white", "navy")}),
        Leaf("laptops", "Laptops", ("laptop", "notebook", "ultrabook"), 900.0,
             {"memory": ("8 GB", "16 GB", "32 GB")}, complements=("laptop-bags", "chargers")),
        Leaf("laptop-bags", "Laptop bags", ("laptop sleeve", "laptop backpack"), 40.0,
             {"colour": ("black", "grey", "navy")}, complements=("laptops",)),
        Leaf("cameras", "Cameras", ("mirrorless camera", "action camera", "compact camera"), 550.0,
             {"kit": ("body only", "with lens")}, complements=("memory-cards",)),
        Leaf("memory-cards", "Memory cards", ("microSD card", "SD card"), 18.0,
             {"capacity": ("64 GB", "128 GB", "256 GB")}, consumable=True, complements=("cameras",)),
    )),
    Root("fashion", "Fashion", ("Marlowe", "Asterly", "Kestrel", "Norde", "Vella", "Oakhurst", "Brio"),
         ("classic", "slim-fit", "relaxed", "organic", "vintage", "lightweight", "everyday"), (
        Leaf("t-shirts", "T-shirts", ("t-shirt", "crew-neck tee", "polo shirt"), 19.0,
             {"size": SIZES, "colour": COLOURS}, complements=("jeans",)),
        Leaf("jeans", "Jeans", ("jeans", "chinos", "trousers"), 55.0,
             {"size": ("28", "30", "32", "34", "36"), "colour": ("indigo", "black", "stone")},
             complements=("t-shirts", "belts")),
        Leaf("dresses", "Dresses", ("dress", "midi dress", "wrap dress"), 65.0,
             {"size": SIZES, "colour": COLOURS}),
        Leaf("sneakers", "Sneakers", ("sneakers", "running shoes", "trainers"), 80.0,
             {"size": ("38", "39", "40", "41", "42", "43", "44"), "colour": ("white", "black", "grey")},
             complements=("socks",)),
        Leaf("socks", "Socks", ("socks", "ankle socks", "sport socks"), 9.0,
             {"size": ("S", "M", "L")}, consumable=True, complements=("sneakers",)),
        Leaf("belts", "Belts", ("belt", "leather belt"), 25.0,
             {"size": ("S", "M", "L"), "colour": ("black", "brown")}, complements=("jeans",)),
    )),
    Root("home-kitchen", "Home and kitchen", ("Hearthly", "Copperleaf", "Nordvik", "Casa Bela", "Ironwood", "Pura"),
         ("stainless", "non-stick", "handmade", "ceramic", "stackable", "premium", "minimalist"), (
        Leaf("cookware", "Cookware", ("frying pan", "saucepan", "dutch oven", "wok"), 45.0,
             {"diameter": ("20 cm", "24 cm", "28 cm")}, complements=("kitchen-utensils",)),
        Leaf("kitchen-utensils", "Kitchen utensils", ("spatula set", "chef's knife", "cutting board"), 20.0,
             complements=("cookware",)),
        Leaf("coffee", "Coffee makers", ("espresso machine", "pour-over kit", "french press", "grinder"), 120.0,
             complements=("coffee-beans",)),
        Leaf("coffee-beans", "Coffee beans", ("coffee beans", "ground coffee", "espresso roast"), 14.0,
             {"weight": ("250 g", "500 g", "1 kg")}, consumable=True, complements=("coffee",)),
        Leaf("bedding", "Bedding", ("duvet cover", "pillow", "sheet set", "blanket"), 50.0,
             {"size": ("single", "double", "king"), "colour": COLOURS[:5]}),
        Leaf("lighting", "Lighting", ("desk lamp", "floor lamp", "LED bulb pack"), 35.0,
             {"colour": ("black", "white", "brass")}),
    )),
    Root("beauty", "Beauty and health", ("Lumea", "Verdana", "Solace", "Aurel", "Botanic Lab"),
         ("hydrating", "fragrance-free", "vegan", "gentle", "revitalising", "mineral"), (
        Leaf("skincare", "Skincare", ("face cream", "serum", "cleanser", "sunscreen"), 24.0,
             {"volume": ("30 ml", "50 ml", "100 ml")}, consumable=True),
        Leaf("haircare", "Haircare", ("shampoo", "conditioner", "hair oil"), 12.0,
             {"volume": ("250 ml", "500 ml")}, consumable=True),
        Leaf("fragrance", "Fragrance", ("eau de parfum", "eau de toilette", "body mist"), 60.0,
             {"volume": ("30 ml", "50 ml", "100 ml")}),
        Leaf("vitamins", "Vitamins", ("multivitamin", "vitamin D", "omega-3 capsules"), 16.0,
             {"count": ("60", "120")}, consumable=True),
    )),
    Root("sports", "Sports and outdoors", ("Summit", "Trailo", "Apex Motion", "Riverline", "Kinetix"),
         ("waterproof", "breathable", "ultralight", "durable", "ergonomic", "all-season"), (
        Leaf("yoga", "Yoga", ("yoga mat", "yoga block", "resistance band"), 28.0,
             {"colour": ("purple", "black", "teal")}),
        Leaf("cycling", "Cycling", ("bike helmet", "bike light", "cycling gloves"), 45.0,
             {"size": ("S", "M", "L")}),
        Leaf("camping", "Camping", ("tent", "sleeping bag", "camping stove", "headlamp"), 95.0,
             complements=("backpacks",)),
        Leaf("backpacks", "Backpacks", ("hiking backpack", "daypack"), 70.0,
             {"capacity": ("20 L", "30 L", "45 L")}, complements=("camping",)),
        Leaf("fitness", "Fitness", ("dumbbell set", "kettlebell", "jump rope"), 40.0,
             {"weight": ("4 kg", "8 kg", "12 kg")}, complements=("protein",)),
        Leaf("protein", "Sports nutrition", ("whey protein", "protein bar box", "electrolyte mix"), 30.0,
             {"flavour": ("vanilla", "chocolate", "unflavoured")}, consumable=True, complements=("fitness",)),
    )),
    Root("toys", "Toys and games", ("Playfield", "Tinker & Co", "Bright Bear", "Quest Games"),
         ("educational", "wooden", "colourful", "classic", "award-winning"), (
        Leaf("board-games", "Board games", ("board game", "card game", "strategy game"), 35.0),
        Leaf("puzzles", "Puzzles", ("jigsaw puzzle", "3D puzzle"), 18.0, {"pieces": ("500", "1000", "2000")}),
        Leaf("building-sets", "Building sets", ("building set", "construction kit"), 45.0),
        Leaf("plush", "Plush toys", ("plush bear", "soft toy"), 20.0),
    )),
    Root("books", "Books", ("Northwind Press", "Larkspur Books", "Meridian House"),
         ("bestselling", "illustrated", "annotated", "paperback", "hardcover"), (
        Leaf("fiction", "Fiction", ("novel", "short story collection", "thriller"), 15.0,
             {"format": ("paperback", "hardcover", "e-book")}),
        Leaf("cookbooks", "Cookbooks", ("cookbook", "baking book"), 25.0, complements=("cookware",)),
        Leaf("children-books", "Children's books", ("picture book", "bedtime stories"), 11.0),
    )),
    Root("pets", "Pet supplies", ("Pawsome", "Happy Tails", "Northpaw"),
         ("grain-free", "chew-resistant", "natural", "orthopaedic"), (
        Leaf("pet-food", "Pet food", ("dry dog food", "cat food", "puppy food"), 32.0,
             {"weight": ("2 kg", "6 kg", "12 kg")}, consumable=True, complements=("pet-toys",)),
        Leaf("pet-toys", "Pet toys", ("chew toy", "cat teaser", "tennis balls"), 10.0, complements=("pet-food",)),
        Leaf("pet-beds", "Pet beds", ("dog bed", "cat bed"), 45.0, {"size": ("S", "M", "L")}),
    )),
    Root("grocery", "Grocery", ("Fields & Co", "Olive Grove", "Green Basket"),
         ("organic", "fair-trade", "gluten-free", "cold-pressed"), (
        Leaf("pantry", "Pantry", ("olive oil", "pasta", "rice", "granola"), 7.0,
             {"pack": ("single", "pack of 3")}, consumable=True),
        Leaf("tea", "Tea", ("green tea", "black tea", "herbal tea"), 6.0, {"count": ("20 bags", "50 bags")},
             consumable=True),
        Leaf("snacks", "Snacks", ("nut mix", "dark chocolate", "crackers"), 5.0, consumable=True),
    )),
    Root("office", "Office supplies", ("Paperwise", "Inkwell", "Deskly"),
         ("recycled", "refillable", "ergonomic", "A5", "dotted"), (
        Leaf("notebooks", "Notebooks", ("notebook", "journal", "planner"), 12.0, complements=("pens",)),
        Leaf("pens", "Pens", ("gel pen set", "fountain pen", "highlighters"), 9.0, consumable=True,
             complements=("notebooks",)),
        Leaf("desk", "Desk accessories", ("desk organiser", "monitor stand", "desk mat"), 30.0),
    )),
)

FIRST_NAMES = ("Ana", "Ben", "Carla", "Daniel", "Eva", "Felix", "Grace", "Hugo", "Iris", "Jonas", "Kira", "Liam",
               "Maya", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wen", "Yara", "Zoe")
LAST_NAMES = ("Silva", "Okafor", "Nakamura", "Schmidt", "Garcia", "Rossi", "Novak", "Haddad", "Kowalski",
              "Andersen", "Moreau", "Chen", "Patel", "Costa", "Muller", "Dubois", "Ivanova", "Santos")
STORE_WORDS = ("Corner", "Market", "Depot", "House", "Supply", "Outlet", "Goods", "Studio", "Emporium", "Works")
CITIES = ("Lisbon", "Porto", "Madrid", "Lyon", "Berlin", "Milan", "Krakow", "Austin", "Denver", "Toronto")

DESCRIPTION_TEMPLATES = (
    "The {title} is a {adjective} choice from {brand}. {feature}",
    "{brand} designed this {noun} to be {adjective} and easy to live with. {feature}",
    "A {adjective} {noun} by {brand}, made for everyday use. {feature}",
)
FEATURES = (
    "Backed by a two-year warranty.", "Ships in recyclable packaging.", "Rated highly by repeat customers.",
    "Tested for durability in our lab.", "Easy returns within 30 days.", "Designed in small batches.",
)
REVIEW_COMMENTS = {
    1: ("Stopped working after a week.", "Not as described.", "Would not buy again."),
    2: ("Quality is below what I expected.", "Arrived late and scratched."),
    3: ("Does the job, nothing special.", "Okay for the price."),
    4: ("Good value, would recommend.", "Works well, minor quibbles.", "Solid and well made."),
    5: ("Excellent, exactly what I needed!", "Love it, buying another.", "Great quality and fast delivery."),
}


def leaves() -> list[tuple[Root, Leaf]]:
    return [(root, leaf) for root in ROOTS for leaf in root.leaves]
