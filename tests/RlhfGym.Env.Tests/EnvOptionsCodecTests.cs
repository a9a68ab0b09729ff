using System.Globalization;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Options;
using RlhfGym.Env.Rewards;

namespace RlhfGym.Env.Tests;

public class EnvOptionsCodecTests
{
    /// <summary>A valid value of each option other than its default, in canonical text.</summary>
    internal static string NonDefault(EnvOption option) => option.Type switch
    {
        EnvOptionType.Choice => option.Allowed.First(a => a != option.Default),
        EnvOptionType.Boolean => option.Default == "true" ? "false" : "true",
        EnvOptionType.Integer => (int.Parse(option.Default, CultureInfo.InvariantCulture) + 5).ToString(CultureInfo.InvariantCulture),
        _ => (double.Parse(option.Default, CultureInfo.InvariantCulture) + 0.25).ToString("R", CultureInfo.InvariantCulture),
    };

    [Fact]
    public void Every_option_round_trips_one_at_a_time()
    {
        foreach (var option in EnvOptionTable.All)
        {
            // c_ent only exists for a segment reading: keep the mode segment when testing it.
            string value = option.Key == "mode" ? "token" : NonDefault(option);
            var decoded = EnvOptionsCodec.Decode(new Dictionary<string, string> { [option.Key] = value }, new EnvOptions());
            Assert.Equal(value, EnvOptionsCodec.Encode(decoded)[option.Key]);
            Assert.NotEqual(new EnvOptions(), decoded);
        }
    }

    [Fact]
    public void All_options_at_once_round_trip_and_encode_lists_every_key()
    {
        var options = new EnvOptions
        {
            Reading = RewardReading.Segment(1.25),
            Normalizer = NormalizerKind.Last,
            Interpolation = Interpolation.None,
            Delivery = RewardDelivery.Online,
            MaxNewTokens = 7,
            MissingEos = MissingEosRule.Penalty,
            MissingEosPenalty = 0.125,
            DenseAsBandit = true,
            PromptSplit = "test",
        };
        var text = EnvOptionsCodec.Encode(options);
        Assert.Equal(EnvOptionTable.Keys, text.Keys);
        Assert.Equal(options, EnvOptionsCodec.Decode(text, new EnvOptions()));
        // A bandit reading has no c_ent: it is written empty, and empty reads as "not given".
        var bandit = options with { Reading = RewardReading.Bandit };
        Assert.Equal("", EnvOptionsCodec.Encode(bandit)["c_ent"]);
        Assert.Equal(bandit, EnvOptionsCodec.Decode(EnvOptionsCodec.Encode(bandit), new EnvOptions()));
    }

    [Theory]
    [InlineData("True")]
    [InlineData("true")]
    [InlineData("TRUE")]
    public void Dense_as_bandit_true_in_any_case_takes_effect(string value) =>
        Assert.True(EnvOptionsCodec.Decode(new Dictionary<string, string> { ["dense_as_bandit"] = value }, new EnvOptions()).DenseAsBandit);

    [Theory]
    [InlineData("yes")]
    [InlineData("1")]
    [InlineData("banana")]
    [InlineData("")]
    public void Dense_as_bandit_other_words_are_errors_naming_the_key(string value)
    {
        var e = Assert.Throws<EnvOptionException>(() =>
            EnvOptionsCodec.Decode(new Dictionary<string, string> { ["dense_as_bandit"] = value }, new EnvOptions { DenseAsBandit = true }));
        Assert.Equal("dense_as_bandit", e.Key);
        Assert.Contains("'dense_as_bandit'", e.Message);
        Assert.Contains("true or false", e.Message);
        Assert.Contains($"'{value}'", e.Message);
    }

    [Theory]
    [InlineData("mode", "bandit", "bandit reading")]
    [InlineData("dense_as_bandit", "true", "dense_as_bandit")]
    [InlineData("delivery", "online", "online delivery")]
    public void Length_norm_is_refused_where_there_are_no_per_token_rewards_to_divide(string key, string value, string why)
    {
        var e = Assert.Throws<EnvOptionException>(() =>
            EnvOptionsCodec.Decode(new Dictionary<string, string> { ["length_norm"] = "true", [key] = value }, new EnvOptions()));
        Assert.Equal("length_norm", e.Key);
        Assert.Contains(why, e.Message);
        Assert.True(EnvOptionsCodec.Decode(new Dictionary<string, string> { ["length_norm"] = "true", ["mode"] = "token" }, new EnvOptions()).LengthNorm);
    }

    [Theory]
    [InlineData("mode", "dense", "bandit, token or segment")]
    [InlineData("normalizer", "median", "location, global, last or none")]
    [InlineData("interpolation", "cubic", "even, repeat or none")]
    [InlineData("delivery", "later", "episode or online")]
    [InlineData("missing_eos", "ignore", "overwrite or penalty")]
    [InlineData("prompt_split", "dev", "train, validation or test")]
    [InlineData("max_new_tokens", "0", "an integer > 0")]
    [InlineData("max_new_tokens", "12.0", "an integer > 0")]
    [InlineData("max_new_tokens", "many", "an integer > 0")]
    [InlineData("c_ent", "-1", "a finite number >= 0")]
    [InlineData("c_ent", "2,5", "a finite number >= 0")]
    [InlineData("c_ent", "NaN", "a finite number >= 0")]
    [InlineData("missing_eos_penalty", "Infinity", "a finite number >= 0")]
    [InlineData("missing_eos_penalty", "-0.5", "a finite number >= 0")]
    [InlineData("c_ent", " 2.5 ", "a finite number >= 0")] // spaces are refused in every type, numbers included
    [InlineData("max_new_tokens", " 12", "an integer > 0")]
    [InlineData("mode", "segment ", "bandit, token or segment")]
    public void Bad_values_name_the_key_and_what_it_accepts(string key, string value, string accepts)
    {
        var e = Assert.Throws<EnvOptionException>(() => EnvOptionsCodec.Decode(new Dictionary<string, string> { [key] = value }, new EnvOptions()));
        Assert.Equal(key, e.Key);
        Assert.Equal($"option '{key}' must be {(accepts.Contains(" or ") && !accepts.StartsWith("true") ? "one of " : "")}{accepts}; got '{value}'", e.Message);
        Assert.IsAssignableFrom<ArgumentException>(e);
    }

    [Fact]
    public void A_nil_value_names_the_key_and_what_it_accepts()
    {
        // A client's options map may hold a nil (msgpack nil, Python None): refused like any bad value, naming its key.
        var e = Assert.Throws<EnvOptionException>(() => EnvOptionsCodec.Decode(new Dictionary<string, string> { ["c_ent"] = null! }, new EnvOptions()));
        Assert.Equal("c_ent", e.Key);
        Assert.Equal("option 'c_ent' must be a finite number >= 0; got nil (no value)", e.Message);
    }

    [Fact]
    public void Unknown_keys_are_errors_listing_the_known_ones()
    {
        var e = Assert.Throws<EnvOptionException>(() => EnvOptionsCodec.Decode(new Dictionary<string, string> { ["dense-as-bandit"] = "true" }, new EnvOptions()));
        Assert.Equal("dense-as-bandit", e.Key);
        Assert.Contains("unknown option 'dense-as-bandit'", e.Message);
        foreach (var key in EnvOptionTable.Keys) Assert.Contains(key, e.Message);
    }

    [Fact]
    public void Choices_read_in_any_case_and_numbers_in_the_invariant_culture()
    {
        var previous = CultureInfo.CurrentCulture;
        try
        {
            CultureInfo.CurrentCulture = new CultureInfo("de-DE"); // a comma culture must not change what "2.5" means
            var o = EnvOptionsCodec.Decode(new Dictionary<string, string>
            {
                ["mode"] = "Segment",
                ["c_ent"] = "2.5",
                ["normalizer"] = "GLOBAL",
                ["missing_eos_penalty"] = "1e-3",
                ["prompt_split"] = "Validation",
            }, new EnvOptions());
            Assert.Equal(RewardReading.Segment(2.5), o.Reading);
            Assert.Equal(NormalizerKind.Global, o.Normalizer);
            Assert.Equal(0.001, o.MissingEosPenalty);
            Assert.Equal("validation", o.PromptSplit);
            Assert.Equal("2.5", EnvOptionsCodec.Encode(o)["c_ent"]);
        }
        finally { CultureInfo.CurrentCulture = previous; }
    }

    [Fact]
    public void A_partial_map_applies_over_the_base_options_with_the_CLIs_mode_and_c_ent_rule()
    {
        var bundle = new EnvOptions { Reading = RewardReading.Segment(1.5), MaxNewTokens = 12, Delivery = RewardDelivery.Online };
        Assert.Same(bundle, EnvOptionsCodec.Decode(null, bundle));
        var o = EnvOptionsCodec.Decode(new Dictionary<string, string> { ["interpolation"] = "repeat" }, bundle);
        Assert.Equal(bundle with { Interpolation = Interpolation.Repeat }, o);
        // Naming a mode without c_ent means the paper's c_ent; c_ent alone keeps the bundle's mode.
        Assert.Equal(RewardReading.Segment(), EnvOptionsCodec.Decode(new Dictionary<string, string> { ["mode"] = "segment" }, bundle).Reading);
        Assert.Equal(RewardReading.Segment(3), EnvOptionsCodec.Decode(new Dictionary<string, string> { ["c_ent"] = "3" }, bundle).Reading);
        Assert.Equal(RewardReading.Segment(3), EnvOptionsCodec.Decode(new Dictionary<string, string> { ["c_ent"] = "3", ["mode"] = "segment" }, bundle).Reading);
        Assert.Equal(RewardReading.Bandit, EnvOptionsCodec.Decode(new Dictionary<string, string> { ["mode"] = "bandit", ["c_ent"] = "3" }, bundle).Reading);
        Assert.Equal(bundle.Reading, EnvOptionsCodec.Decode(new Dictionary<string, string> { ["c_ent"] = "" }, bundle).Reading);
    }

    [Fact]
    public void Validate_names_the_option_out_of_range()
    {
        Assert.Equal("max_new_tokens", Assert.Throws<EnvOptionException>(() => new EnvOptions { MaxNewTokens = 0 }.Validate()).Key);
        Assert.Equal("missing_eos_penalty", Assert.Throws<EnvOptionException>(() => new EnvOptions { MissingEosPenalty = double.NaN }.Validate()).Key);
        Assert.Equal("c_ent", Assert.Throws<EnvOptionException>(() => new EnvOptions { Reading = new RewardReading(RewardMode.Segment, -1) }.Validate()).Key);
        Assert.Equal("prompt_split", Assert.Throws<EnvOptionException>(() => new EnvOptions { PromptSplit = "Train" }.Validate()).Key);
        new EnvOptions { Reading = RewardReading.Bandit }.Validate(); // c_ent = ∞ is a bandit reading's, not an error
    }

    [Fact]
    public void The_table_describes_each_option()
    {
        Assert.Equal(new[] { "mode", "c_ent", "normalizer", "interpolation", "delivery", "max_new_tokens", "missing_eos", "missing_eos_penalty", "dense_as_bandit", "length_norm", "prompt_split" },
            EnvOptionTable.Keys);
        foreach (var o in EnvOptionTable.All)
        {
            Assert.False(string.IsNullOrWhiteSpace(o.Doc), o.Key);
            Assert.Equal(o.Default, EnvOptionsCodec.Canonical(o.Key, o.Default)); // defaults are valid and canonical
        }
        Assert.Equal("--max-new-tokens", EnvOptionTable.Find("max_new_tokens")!.Flag);
        Assert.Equal("> 0", EnvOptionTable.Find("max_new_tokens")!.Range);
    }
}
