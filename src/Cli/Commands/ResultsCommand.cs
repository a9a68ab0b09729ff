using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.Json.Nodes;
using RlhfGym.Experiments.Compare;
using RlhfGym.Experiments.Results;
using RlhfGym.Models;
using RlhfGym.Models.Checkpoints;

namespace RlhfGym.Cli.Commands;

/// <summary>
/// `rlhfgym results`: regenerates a results page (docs/results.md) from the commands written into it. Each region
/// between "&lt;!-- results: rlhfgym compare … --&gt;" and "&lt;!-- /results --&gt;" is run as that compare (finished
/// runs are reused from one run store, so a setting several regions share trains once) and its tables replace the
/// region; the prose around the regions is kept. The page is rewritten after each region, so a long regeneration
/// stopped half-way keeps what it finished and resumes where it stopped.
/// </summary>
public static class ResultsCommand
{
    public static Command Create()
    {
        var doc = new Option<string>("--doc") { Description = "the results page", DefaultValueFactory = _ => Path.Combine("docs", "results.md") };
        var runs = new Option<string>("--runs")
        {
            Description = "where runs are kept: RUNS/store holds every run by setting, RUNS/compare-<name> each region's tables and plots",
            DefaultValueFactory = _ => Path.Combine("runs", "results"),
        };
        var only = new Option<string?>("--only") { Description = "comma-separated region names (e.g. paper-main,paper-normalizer-LocationTrend); default every region" };
        var plan = new Option<bool>("--plan") { Description = "train nothing and write nothing: list each region's command and how many of its runs are finished" };
        var device = CommonOptions.Device();
        var command = new Command("results", "regenerate a results page's tables from the compare commands written into it (docs/results.md)")
        {
            doc, runs, only, plan, device,
        };
        VerbRunner.Set(command, (parse, progress) =>
        {
            var page = ResultsDocument.Load(parse.GetValue(doc)!);
            string runsRoot = parse.GetValue(runs)!;
            var store = new RunStore(Path.Combine(runsRoot, "store"));
            var regions = page.Blocks.Select(b => (Block: b, Request: Request(page, b, progress))).ToList();
            if (regions.Count == 0) throw new InvalidDataException($"{page.Path} has no results regions ('{ResultsDocument.OpenPrefix} rlhfgym compare … {ResultsDocument.MarkerSuffix}')");
            if (regions.GroupBy(r => r.Request.Name).FirstOrDefault(g => g.Count() > 1) is { } twice)
                throw new InvalidDataException($"{page.Path}: two regions run the grid '{twice.Key}' (lines {string.Join(", ", twice.Select(r => r.Block.OpenLine + 1))}); keep one");
            var selected = Select(regions.Select(r => r.Request.Name).ToList(), parse.GetValue(only));
            bool planOnly = parse.GetValue(plan);
            var dev = planOnly ? null : DeviceSelector.Resolve(parse.GetValue(device)!);
            var reports = new JsonArray();
            int changed = 0;
            foreach (var (block0, request) in regions.Where(r => selected.Contains(r.Request.Name)))
            {
                string outDir = Path.Combine(runsRoot, $"compare-{request.Name}");
                var report = new JsonObject { ["name"] = request.Name, ["line"] = block0.OpenLine + 1, ["command"] = block0.Command };
                if (planOnly)
                {
                    var cells = CompareRunner.Plan(outDir, request.Cells, request.Seeds, request.Iterations, store);
                    report["runs"] = request.Cells.Count * request.Seeds;
                    report["finished"] = cells.Sum(c => (int)c!["finished"]!);
                    report["cells"] = cells;
                    reports.Add(report);
                    continue;
                }
                progress($"results: {request.Name} ({block0.Command})");
                var result = new CompareRunner(dev!, progress).Run(outDir, request.Cells, request.Seeds, request.Iterations, store);
                // Re-read the page: the prose may have been edited while the region's runs trained.
                page = ResultsDocument.Load(page.Path);
                var block = page.Blocks.FirstOrDefault(b => b.Command == block0.Command)
                    ?? throw new InvalidDataException($"{page.Path}: the region '{block0.Command}' was edited or removed while it ran; its tables are in {outDir}/compare.md");
                string body = RegionBody(page.Path, outDir, request.Name, result);
                var updated = page.WithBody(block, body);
                bool differs = updated.Text != page.Text;
                if (differs)
                {
                    AtomicFile.WriteAllText(page.Path, updated.Text);
                    changed++;
                }
                page = updated;
                report["ran"] = result["runs"]!.DeepClone();
                report["reused"] = result["skipped"]!.DeepClone();
                report["changed"] = differs;
                reports.Add(report);
            }
            return new JsonObject
            {
                ["doc"] = Path.GetFullPath(page.Path),
                ["store"] = Path.GetFullPath(store.Root),
                ["plan"] = planOnly,
                ["regions"] = reports,
                ["changed"] = planOnly ? null : changed,
            };
        });
        return command;
    }

    /// <summary>A region's command read with compare's own options; anything but a grid (--out, --run-store, another verb) is refused.</summary>
    private static CompareRequest Request(ResultsDocument page, ResultsBlock block, Action<string> progress)
    {
        string where = $"{page.Path}:{block.OpenLine + 1}";
        var tokens = CommandLineParser.SplitCommandLine(block.Command).ToList();
        if (tokens.Count < 2 || tokens[0] != "rlhfgym" || tokens[1] != "compare")
            throw new InvalidDataException($"{where}: a results region must be made by 'rlhfgym compare …'; got '{block.Command}'");
        var grid = new CompareGridOptions();
        var compare = new Command("compare") { CommonOptions.Json };
        grid.AddTo(compare);
        var parse = compare.Parse(tokens.Skip(2).ToList());
        if (parse.Errors.Count > 0)
            throw new InvalidDataException($"{where}: {string.Join("; ", parse.Errors.Select(e => e.Message))} (a region's command names its grid only: results chooses where runs go)");
        try
        {
            return grid.Read(parse, progress);
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException)
        {
            throw new InvalidDataException($"{where}: {e.Message}", e);
        }
    }

    private static HashSet<string> Select(IReadOnlyList<string> names, string? only)
    {
        if (only is null) return [.. names];
        var wanted = only.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToHashSet();
        if (wanted.Count == 0) throw new ArgumentException("--only names no region");
        if (wanted.FirstOrDefault(w => !names.Contains(w)) is { } unknown)
            throw new ArgumentException($"--only: no region named '{unknown}' (regions: {string.Join(", ", names)})");
        return wanted;
    }

    /// <summary>
    /// What a region holds: compare's markdown tables, and for a grid with a KL axis its frontier plot, copied next to
    /// the page (img/&lt;name&gt;-gold-vs-kl.png) and linked.
    /// </summary>
    private static string RegionBody(string pagePath, string outDir, string name, JsonObject result)
    {
        string tables = File.ReadAllText(Path.Combine(outDir, "compare.md")).Trim();
        if (result["frontier"] is null) return tables;
        string image = $"{name}-gold-vs-kl.png";
        using (var plot = File.OpenRead(Path.Combine(outDir, "compare_frontier.png")))
            AtomicFile.Write(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(pagePath))!, "img", image), plot.CopyTo);
        return $"![Gold against KL: {name}](img/{image})\n\n{tables}";
    }
}
