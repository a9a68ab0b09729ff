using System.Globalization;
using System.Text.RegularExpressions;
using RlhfGym.Env.Options;

namespace RlhfGym.Env.Tests;

/// <summary>docs/env.md's option table says what the code's <see cref="EnvOptionTable"/> does.</summary>
public class EnvOptionsDocsTests
{
    private sealed record Row(string Key, string Flag, string Type, string Default, string Values, string Meaning);

    // The rows of the table under "## Options": | `key` | `--flag` | type | `default` | values | meaning |
    private static List<Row> DocRows()
    {
        string path = RepositoryRoot.File("docs", "env.md");
        var lines = File.ReadAllLines(path);
        int start = Array.FindIndex(lines, l => l.StartsWith("## Options", StringComparison.Ordinal));
        Assert.True(start >= 0, "docs/env.md has no '## Options' section");
        return lines.Skip(start + 1).SkipWhile(l => !l.StartsWith('|')).TakeWhile(l => l.StartsWith('|'))
            .Select(l => l.Trim().Trim('|').Split('|').Select(c => c.Trim()).ToArray())
            .Where(c => c[0].StartsWith('`'))
            .Select(c =>
            {
                Assert.True(c.Length == 6, $"docs/env.md option row needs 6 cells: {string.Join(" | ", c)}");
                return new Row(Unquote(c[0]), Unquote(c[1]), c[2], Unquote(c[3]), c[4], c[5]);
            }).ToList();
    }

    private static string Unquote(string cell) => cell.Trim('`');

    private static string Expected(EnvOption o) =>
        $"| `{o.Key}` | `{o.Flag}` | {o.Type.ToString().ToLowerInvariant()} | `{o.Default}` | {Values(o)} | {o.Doc} |";

    private static string Values(EnvOption o) => o.Type switch
    {
        EnvOptionType.Choice => string.Join(", ", o.Allowed.Select(a => $"`{a}`")),
        EnvOptionType.Boolean => "`true`, `false`",
        _ => o.Range == "" ? "any" : $"`{o.Range}`",
    };

    [Fact]
    public void Docs_option_table_matches_the_code_table()
    {
        var rows = DocRows();
        string hint = "expected rows (meaning may differ):\n" + string.Join("\n", EnvOptionTable.All.Select(Expected));
        Assert.True(EnvOptionTable.Keys.SequenceEqual(rows.Select(r => r.Key)), $"docs/env.md option keys: {string.Join(", ", rows.Select(r => r.Key))}\n{hint}");
        foreach (var (option, row) in EnvOptionTable.All.Zip(rows))
        {
            Assert.True(option.Flag == row.Flag, $"{option.Key}: flag {row.Flag}, code {option.Flag}\n{hint}");
            Assert.True(option.Type.ToString().Equals(row.Type, StringComparison.OrdinalIgnoreCase), $"{option.Key}: type {row.Type}, code {option.Type}\n{hint}");
            bool sameDefault = option.Type == EnvOptionType.Number
                ? double.TryParse(row.Default, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && d.ToString("R", CultureInfo.InvariantCulture) == option.Default
                : row.Default == option.Default;
            Assert.True(sameDefault, $"{option.Key}: default {row.Default}, code {option.Default}\n{hint}");
            // Values: the backticked words (annotations such as "(paper)" may follow them).
            var words = Regex.Matches(row.Values, "`([^`]*)`").Select(m => m.Groups[1].Value).ToList();
            var expected = Regex.Matches(Values(option), "`([^`]*)`").Select(m => m.Groups[1].Value).ToList();
            Assert.True(expected.Order().SequenceEqual(words.Order()), $"{option.Key}: values {row.Values}, code {Values(option)}\n{hint}");
            Assert.False(string.IsNullOrWhiteSpace(row.Meaning), $"{option.Key}: no meaning");
        }
    }
}
