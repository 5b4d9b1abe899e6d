// Word lists for the synthetic demo catalogue, kept as plain text tables so they read (and diff)
// like data. Brand names are invented for the demo.

export interface CategoryWords {
  name: string
  /** Median price in the shop's currency; prices scatter log-normally around it. */
  medianPrice: number
  /** Whether colour names suit the category ("Sage Teapot" yes, "Sage Coffee Beans" no). */
  colours: boolean
  nouns: readonly string[]
  materials: readonly string[]
}

// name | median price | colours | nouns | materials
const CATEGORY_TABLE = `
Kitchen | 35 | yes | Skillet, Saucepan, Kettle, Chef's Knife, Cutting Board, Colander, Dutch Oven, Whisk, Mixing Bowl, Grater | Cast-Iron, Copper, Enamel, Bamboo, Carbon Steel, Ceramic
Tableware | 22 | yes | Dinner Plate, Mug, Tumbler, Serving Bowl, Carafe, Espresso Cup, Platter, Wine Glass, Teapot | Stoneware, Porcelain, Glass, Olivewood, Terracotta
Bedding | 60 | yes | Duvet Cover, Pillowcase Pair, Quilt, Fitted Sheet, Throw Blanket, Bedspread | Linen, Percale, Flannel, Sateen, Wool
Bath | 25 | yes | Bath Towel, Bath Mat, Robe, Soap Dish, Shower Curtain, Hand Towel | Waffle-Weave, Terry, Cotton, Marble, Bamboo
Lighting | 80 | yes | Table Lamp, Floor Lamp, Pendant Light, Desk Lamp, Lantern, Wall Sconce | Brass, Rattan, Opal Glass, Paper, Walnut
Furniture | 240 | yes | Armchair, Side Table, Bookshelf, Stool, Bench, Console Table, Sofa, Dresser | Oak, Walnut, Velvet, Rattan, Steel
Decor | 30 | yes | Vase, Candle Holder, Wall Mirror, Picture Frame, Planter, Cushion, Sculpture | Ceramic, Brass, Glass, Jute, Concrete
Garden | 28 | yes | Watering Can, Trowel, Pruning Shears, Hose Reel, Raised Bed, Bird Feeder, Garden Gloves | Galvanised, Cedar, Steel, Recycled, Willow
Camping | 70 | yes | Tent, Sleeping Bag, Camp Stove, Headlamp, Daypack, Trekking Poles, Hammock | Ripstop, Down, Titanium, Waxed Canvas, Aluminium
Fitness | 35 | yes | Yoga Mat, Kettlebell, Jump Rope, Foam Roller, Dumbbell Set, Resistance Band | Cork, Neoprene, Natural Rubber, Steel
Cycling | 45 | yes | Bike Helmet, Bike Light, Saddle Bag, Bottle Cage, Cycling Jersey, Mini Pump | Carbon, Aluminium, Merino, Reflective
Audio | 90 | yes | Headphones, Earbuds, Bluetooth Speaker, Turntable, Soundbar, Radio | Walnut, Aluminium, Matte, Fabric-Wrapped
Computing | 55 | yes | Keyboard, Mouse, Monitor Stand, Laptop Sleeve, USB-C Hub, Webcam | Aluminium, Wireless, Mechanical, Felt
Phone Accessories | 20 | yes | Phone Case, Charging Stand, Power Bank, Charging Cable, Car Mount, Screen Protector | Silicone, Leather, Braided, Clear, Recycled
Womenswear | 65 | yes | Dress, Blouse, Cardigan, Skirt, Trench Coat, Jumpsuit | Linen, Silk, Cashmere, Denim, Organic Cotton
Menswear | 60 | yes | Oxford Shirt, Chinos, Overshirt, Jumper, Parka, Polo Shirt | Flannel, Merino, Corduroy, Denim, Twill
Shoes | 85 | yes | Sneakers, Chelsea Boots, Loafers, Sandals, Running Shoes, Slippers | Suede, Leather, Canvas, Knit
Bags | 55 | yes | Tote, Backpack, Crossbody Bag, Weekender, Wallet, Card Holder | Leather, Canvas, Nylon, Suede
Jewellery | 75 | no | Ring, Necklace, Watch, Earrings, Bracelet, Pendant, Anklet, Brooch, Cufflinks | Sterling Silver, Gold-Plated, Rose Gold, Pearl, Opal, Onyx, Enamel, Moonstone, Titanium, Jade, Garnet, Amber
Beauty | 18 | no | Face Serum, Moisturiser, Lip Balm, Cleanser, Hair Oil, Face Mask, Body Lotion, Eye Cream, Toner, Hand Cream | Rose, Vitamin C, Aloe, Argan, Oat, Lavender, Green Tea, Hyaluronic, Charcoal, Shea, Jojoba, Neroli
Toys | 25 | yes | Building Blocks, Jigsaw Puzzle, Plush Bear, Wooden Train, Kite, Marble Run | Wooden, Felt, Plush, Recycled
Baby | 22 | yes | Baby Blanket, Bib Set, Teether, Sleep Sack, Rattle, Swaddle | Muslin, Organic Cotton, Silicone, Knit
Stationery | 15 | yes | Notebook, Fountain Pen, Planner, Sketchbook, Desk Organiser, Journal | Leather-Bound, Dotted, Recycled Paper, Brass
Pets | 30 | yes | Dog Bed, Cat Tree, Leash, Pet Bowl, Chew Toy, Collar | Canvas, Rope, Ceramic, Fleece
Pantry | 12 | no | Coffee Beans, Loose-Leaf Tea, Olive Oil, Honey, Dark Chocolate, Hot Sauce, Granola, Pasta, Jam, Sea Salt | Single-Origin, Organic, Smoked, Wildflower, Small-Batch, Cold-Pressed, Roasted, Spiced, Fair-Trade, Stone-Ground, Aged, Heirloom
`

export const CATEGORY_WORDS: readonly CategoryWords[] = CATEGORY_TABLE.trim()
  .split('\n')
  .map((line) => {
    const [name, price, colours, nouns, materials] = line.split(' | ')
    return {
      name: name!,
      medianPrice: Number(price),
      colours: colours === 'yes',
      nouns: splitList(nouns!),
      materials: splitList(materials!),
    }
  })

export const ADJECTIVES = splitList(`
Everyday, Classic, Compact, Cosy, Essential, Heritage, Minimal, Modern, Nordic, Rustic, Soft,
Urban, Vintage, Weekend, Artisan, Signature, Studio, Coastal, Alpine, Handmade, Lightweight,
Premium, Travel, Little, Grand, Breezy, Bold, Quiet, Sunday, Field, Harbour, Meadow, Crafted,
Hearth, Folk, Linden, Summit, Tidal, Wild, Gentle
`)

export const COLOURS = splitList(`
Sage, Charcoal, Ivory, Terracotta, Navy, Ochre, Slate, Blush, Forest, Sand, Midnight, Clay, Oat,
Moss, Teal, Mustard
`)

/** 60 invented brands: two per category in table order, then ten that sell in every category. */
export const BRANDS = splitList(`
Copperleaf, Ironbark, Alder & Oak, Brightwater, Larkspur, Dovetail, Saltmarsh, Tidewell, Lumen &
Co., Umberlight, Elmstead, Birchmoor, Foxglove, Mossgate, Wrenfield, Yarrow, Kestrel, Glenrock,
Nettlefield, Otterby, Spokewise, Cadence, Resonar, Hollowbrook, Keystroke, Northfold, Quayside,
Volt & Vale, Isla Mae, Amberline, Heathcote, Redfern, Cobble Lane, Stridewell, Satchel & Sons,
Driftwood, Goldcrest, Jasper & Vine, Sundew, Bloomery, Pebble & Pine, Marble Fox, Little Wren,
Daybreak, Inkwell, Quillon, Fable & Fur, Pawsmith, Grist & Grain, Hive & Harvest, Zephyr Lane,
Ember & Ash, Fernhill, Greywell, Oakmoss, Thistle, Verdance, Willowby, Astra Home, Kindling
`)

export const GENERAL_BRANDS_FROM = CATEGORY_WORDS.length * 2

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((word) => word.replace(/\s+/g, ' ').trim())
    .filter((word) => word !== '')
}
