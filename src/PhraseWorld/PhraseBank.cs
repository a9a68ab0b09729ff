namespace RlhfGym.PhraseWorld;

/// <summary>
/// The hand-written text of PhraseWorld. Every phrase starts with a word no other phrase starts with, so once a
/// phrase's first word is out its continuation is determined: a trained LM is sure inside a phrase and unsure at its
/// start — the structure entropy segmentation relies on. Values are not here: the world builder draws them from its
/// seed.
/// </summary>
internal static class PhraseBank
{
    public sealed record TopicText(string Name, string[] Informative, string[] Wrong);

    /// <summary>Every topic has this many informative phrases (a test holds the bank to it).</summary>
    public const int InformativePerTopic = 8;

    public static readonly TopicText[] Topics =
    [
        new("cats",
            ["whiskered hunters stalk at dusk", "purring signals calm content", "agile cats land on their feet", "sleepy kittens nap most afternoons", "sandpaper tongues groom fur", "nocturnal eyes see in dim light", "curious paws explore boxes", "independent pets need little walking"],
            ["cats cannot climb trees", "feline fur is made of feathers"]),
        new("dogs",
            ["loyal dogs guard their homes", "wagging tails show joy", "keen noses track faint scents", "daily walks keep dogs fit", "playful puppies chew shoes", "obedient pups learn commands fast", "herding breeds gather sheep", "friendly barks greet visitors"],
            ["dogs breathe underwater", "canine teeth never grow"]),
        new("rivers",
            ["flowing water carves valleys", "muddy deltas feed farmland", "winding meanders slow the current", "fresh springs start many rivers", "salmon swim upstream to spawn", "steady currents carry silt", "ancient towns grew on riverbanks", "broad estuaries meet the sea"],
            ["rivers flow uphill always", "riverbeds are made of glass"]),
        new("mountains",
            ["rocky peaks pierce the clouds", "tectonic plates push ranges up", "thin air makes climbing hard", "snowy summits stay cold all year", "steep slopes shed avalanches", "alpine meadows bloom in summer", "glaciers slowly grind stone", "hardy goats scale the cliffs"],
            ["mountains float on air", "summits are warmer than valleys"]),
        new("coffee",
            ["roasted beans release rich aroma", "caffeine keeps people alert", "espresso is brewed under pressure", "highland farms grow arabica", "fine grinds suit quick brewing", "golden crema tops good espresso", "milky lattes soften bitterness", "careful baristas steam milk"],
            ["coffee grows on pine trees", "brewed espresso contains no water"]),
        new("music",
            ["melodies carry a tune", "rhythm keeps the beat steady", "harmony blends several notes", "orchestras unite many instruments", "practice builds musical skill", "lyrics tell a story", "tempo sets the pace of songs", "concerts gather eager crowds"],
            ["music travels faster than light", "pianos have no keys"]),
        new("space",
            ["distant stars burn hydrogen", "orbiting planets circle the sun", "gravity binds galaxies together", "astronauts train for years", "telescopes reveal faint nebulae", "comets grow bright tails", "silent vacuum carries no sound", "lunar craters mark old impacts"],
            ["space is full of breathable air", "the moon makes its own light"]),
        new("gardens",
            ["rich compost feeds the soil", "gardeners prune roses in spring", "buzzing pollinators visit flowers", "regular watering helps seedlings", "mulch keeps weeds down", "sunny beds suit tomatoes", "raised planters drain well", "seasonal bulbs bloom early"],
            ["gardens grow best in darkness", "weeds never return"]),
        new("trains",
            ["steel rails guide the wheels", "electric locomotives pull carriages", "punctual timetables plan each stop", "sleeper cars offer beds", "signals prevent collisions", "freight trains haul heavy cargo", "bustling stations connect cities", "steam engines burned coal"],
            ["trains fly above the clouds", "railways need no tracks"]),
        new("oceans",
            ["salty water covers most of earth", "tides follow the moon", "coral reefs shelter fish", "deep trenches stay dark", "whales sing across great distances", "waves are driven by wind", "plankton feed the food web", "currents move heat around the globe"],
            ["oceans are made of fresh milk", "fish cannot swim"]),
        new("bread",
            ["yeast makes dough rise", "kneading develops gluten", "crusty loaves bake in hot ovens", "sourdough starters need feeding", "whole grains add fiber", "proofing lets flavors develop", "bakers rise before dawn", "warm slices taste best fresh"],
            ["bread is baked in the freezer", "flour comes from stones"]),
        new("chess",
            ["opening moves control the center", "knights jump over pieces", "checkmate ends the game", "thoughtful players plan ahead", "bishops move diagonally", "endgames reward precise play", "castling protects the king", "tournaments use strict clocks"],
            ["pawns move backward freely", "chess has no rules"]),
    ];

    /// <summary>Generic filler: neither helps nor hurts much.</summary>
    public static readonly string[] Fillers =
    [
        "well as you may know", "generally speaking", "interestingly enough", "in other words", "to put it simply", "of course",
    ];

    /// <summary>Closing phrases: a small bonus only as the last phrase.</summary>
    public static readonly string[] Closings = ["hope this helps", "that is all", "thanks for asking"];

    /// <summary>Prompt templates: "&lt;user&gt; {template} {topic} {style} &lt;assistant&gt;".</summary>
    public static readonly string[] Templates = ["tell me about", "what do you know about", "describe", "explain"];

    /// <summary>Styles and the ideal number of content phrases each asks for.</summary>
    public static readonly (string Style, int Ideal)[] Styles = [("briefly", 2), ("normally", 3), ("in detail", 5)];
}
