using System.Text.Json.Nodes;
using RlhfGym.Experiments.Compare;

namespace RlhfGym.Cli.Tests;

public class CompareGridTests
{
    [Fact]
    public void A_rows_config_is_the_cell_as_a_grid_file_writes_it_and_loads_back_equal()
    {
        using var dir = new TempDir();
        var cells = CompareGrid.WithKlCoefs(
        [
            new CompareCell { Name = "tok", Env = "PhraseWorld-Token-v0", LengthNorm = true, MissingEos = "penalty", MissingEosPenalty = 0.5 },
            new CompareCell { Name = "seg", Env = "PhraseWorld-Segment-v0", CEnt = 1.5, Normalizer = "global", Interpolation = "repeat", Agent = "reinforce" },
            new CompareCell { Name = "ban", Env = "PhraseWorld-Segment-v0", DenseAsBandit = true },
        ], [0.1, 3]);
        string grid = dir.File("grid.json");
        File.WriteAllText(grid, new JsonObject { ["cells"] = new JsonArray(cells.Select(c => (JsonNode)CompareGrid.Describe(c)).ToArray()) }.ToJsonString());
        Assert.Equal(cells, CompareGrid.Load(grid));
        Assert.Equal("tok-beta-0.1", cells[0].Name);
        Assert.Equal("tok", cells[0].Series);
        Assert.DoesNotContain("normalizer", CompareGrid.Describe(cells[0]).Select(kv => kv.Key));
    }

    [Fact]
    public void The_frontier_preset_gives_each_mode_three_beta_values_in_one_series()
    {
        var cells = CompareGrid.Preset("paper-main-frontier");
        Assert.Equal(9, cells.Count);
        Assert.All(cells.GroupBy(c => c.SeriesName), g => Assert.Equal(3, g.Select(c => c.KlCoef).Distinct().Count()));
        Assert.Equal(["segment", "token", "bandit"], cells.Select(c => c.SeriesName).Distinct().ToArray());
    }
}
