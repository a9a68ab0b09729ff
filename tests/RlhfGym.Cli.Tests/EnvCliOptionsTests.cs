using System.CommandLine;
using RlhfGym.Env.Bundles;
using RlhfGym.Env.Options;
using RlhfGym.Env.Rewards;
using RlhfGym.Experiments.Compare;

namespace RlhfGym.Cli.Tests;

/// <summary>The env option flags: one per row of the options table, every value through the options codec.</summary>
public class EnvCliOptionsTests
{
    private static (EnvCliOptions Flags, ParseResult Parse) Parse(params string[] args)
    {
        var flags = new EnvCliOptions();
        var command = new Command("test");
        flags.AddTo(command);
        var parse = command.Parse(["--env", "x", .. args]);
        Assert.Empty(parse.Errors);
        return (flags, parse);
    }

    [Fact]
    public void Every_option_has_a_flag_and_round_trips_through_it()
    {
        var flags = new EnvCliOptions();
        Assert.Equal(EnvOptionTable.Keys, flags.Flags.Keys);
        foreach (var option in EnvOptionTable.All)
        {
            string value = option.Key == "mode" ? "token" : OptionValues.NonDefault(option);
            var (f, parse) = Parse(option.Flag, value);
            var applied = f.Apply(parse, new EnvOptions());
            Assert.Equal(value, EnvOptionsCodec.Encode(applied)[option.Key]);
            Assert.Equal(new Dictionary<string, string> { [option.Key] = value }, f.ToWireOptions(parse));
        }
        // All at once, and the unset flags keep the bundle's defaults.
        var bundle = new EnvOptions { MaxNewTokens = 12, Reading = RewardReading.Segment(1.5) };
        var (all, allParse) = Parse("--c-ent", "3", "--normalizer", "GLOBAL", "--missing-eos", "penalty", "--missing-eos-penalty", "0.5");
        Assert.Equal(bundle with
        {
            Reading = RewardReading.Segment(3),
            Normalizer = Env.Normalization.NormalizerKind.Global,
            MissingEos = MissingEosRule.Penalty,
            MissingEosPenalty = 0.5,
        }, all.Apply(allParse, bundle));
        Assert.Equal("global", all.ToWireOptions(allParse)["normalizer"]); // sent in canonical form
        var (none, noneParse) = Parse();
        Assert.Same(bundle, none.Apply(noneParse, bundle));
        Assert.Empty(none.ToWireOptions(noneParse));
    }

    [Theory]
    [InlineData]
    [InlineData("True")]
    [InlineData("true")]
    [InlineData("TRUE")]
    public void Dense_as_bandit_alone_or_true_in_any_case_takes_effect(params string[] value)
    {
        var (f, parse) = Parse(["--dense-as-bandit", .. value, "--mode", "token"]);
        Assert.True(f.Apply(parse, new EnvOptions()).DenseAsBandit);
        Assert.Equal(RewardReading.Token, f.Apply(parse, new EnvOptions()).Reading);
        Assert.Equal("true", f.ToWireOptions(parse)["dense_as_bandit"]);
    }

    [Fact]
    public void Dense_as_bandit_false_turns_a_bundles_default_off()
    {
        var (f, parse) = Parse("--dense-as-bandit", "False");
        Assert.False(f.Apply(parse, new EnvOptions { DenseAsBandit = true }).DenseAsBandit);
    }

    [Theory]
    [InlineData("--dense-as-bandit", "yes", "true or false")]
    [InlineData("--dense-as-bandit", "1", "true or false")]
    [InlineData("--dense-as-bandit", "banana", "true or false")]
    [InlineData("--max-new-tokens", "ten", "an integer > 0")]
    [InlineData("--c-ent", "-2", "a finite number >= 0")]
    [InlineData("--interpolation", "cubic", "even, repeat or none")]
    public void A_bad_value_is_a_clear_error_naming_the_flag_and_the_key(string flag, string value, string accepts)
    {
        var (f, parse) = Parse(flag, value);
        foreach (var attempt in new Action[] { () => f.Apply(parse, new EnvOptions()), () => f.ToWireOptions(parse) })
        {
            var e = Assert.Throws<EnvOptionException>(attempt);
            Assert.StartsWith($"{flag}: option '{flag[2..].Replace('-', '_')}' must be", e.Message);
            Assert.Contains(accepts, e.Message);
            Assert.EndsWith($"got '{value}'", e.Message);
        }
    }

    [Fact]
    public void Compare_grid_cells_read_options_as_the_codec_does()
    {
        using var dir = new TempDir();
        string grid = dir.File("grid.json");
        File.WriteAllText(grid, """
            {"cells":[
              {"name":"a","env":"e","dense_as_bandit":true,"mode":"Segment","c_ent":1.5},
              {"name":"b","env":"e","dense_as_bandit":"TRUE","normalizer":"LAST"},
              {"name":"c","env":"e","dense_as_bandit":"false"}
            ]}
            """);
        var cells = CompareGrid.Load(grid);
        Assert.True(cells[0].DenseAsBandit);
        Assert.Equal(RewardReading.Segment(1.5), cells[0].Apply(new EnvOptions { Reading = RewardReading.Bandit }).Reading);
        Assert.True(cells[1].Apply(new EnvOptions()).DenseAsBandit);
        Assert.Equal(Env.Normalization.NormalizerKind.Last, cells[1].Apply(new EnvOptions()).Normalizer);
        Assert.False(cells[2].DenseAsBandit);

        void Refused(string cell, params string[] says)
        {
            File.WriteAllText(grid, $$"""{"cells":[{{cell}}]}""");
            var e = Assert.Throws<InvalidDataException>(() => CompareGrid.Load(grid));
            Assert.Contains("cells[0]", e.Message);
            foreach (var s in says) Assert.Contains(s, e.Message);
        }
        Refused("""{"name":"a","env":"e","dense_as_bandit":"yes"}""", "dense_as_bandit", "true or false");
        Refused("""{"name":"a","env":"e","c_ent":"many"}""", "c_ent");
        Refused("""{"name":"a","env":"e","normaliser":"global"}""", "unknown field 'normaliser'", "normalizer");
        Refused("""{"name":"a","env":"e","mode":"bandit","length_norm":true}""", "length_norm", "bandit reading");
        Refused("""{"name":"a","env":"e","missing_eos":"drop"}""", "missing_eos", "overwrite or penalty");
        // A name becomes a run folder under --out: never a path out of it.
        Refused("""{"name":"../escaped","env":"e"}""", "'../escaped'", "plain folder name");
        Refused("""{"name":"/abs","env":"e"}""", "plain folder name");
        Refused("""{"name":"..","env":"e"}""", "plain folder name");
    }

    [Fact]
    public void Compare_grid_cells_set_the_per_mode_reward_scale()
    {
        using var dir = new TempDir();
        string grid = dir.File("grid.json");
        File.WriteAllText(grid, """
            {"cells":[
              {"name":"token-mean","env":"e","mode":"token","length_norm":true},
              {"name":"token-charged","env":"e","mode":"token","missing_eos":"Penalty","missing_eos_penalty":1}
            ]}
            """);
        var cells = CompareGrid.Load(grid);
        var mean = cells[0].Apply(new EnvOptions());
        Assert.True(mean.LengthNorm);
        Assert.Equal(MissingEosRule.Overwrite, mean.MissingEos);
        var charged = cells[1].Apply(new EnvOptions());
        Assert.False(charged.LengthNorm);
        Assert.Equal(MissingEosRule.Penalty, charged.MissingEos);
        Assert.Equal(1.0, charged.MissingEosPenalty);
    }
}
