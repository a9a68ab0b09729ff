using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RlhfGym.Cli;
using RlhfGym.PhraseWorld;

// Worlds are plug-ins: PhraseWorld registers its env ids and its judge (it loads no native code, so serve can still
// set OpenMP's spin before libtorch loads).
PhraseWorldPlugin.Register();

// The generic host supplies configuration (appsettings.json, RLHFGYM_* environment variables), logging to stderr
// and DI; System.CommandLine owns the command line.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings
{
    Args = [],
    ContentRootPath = AppContext.BaseDirectory,
});
builder.Configuration.AddEnvironmentVariables("RLHFGYM_");
builder.Logging.ClearProviders();
builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
using var host = builder.Build();
var parse = RootCommandFactory.Create(host.Services).Parse(args);
// A command line that does not parse (an unknown option, a missing or mistyped value) never reaches a verb, so the
// verb's --json contract is kept here: the error on stderr and one JSON object as the last line of stdout.
if (parse.Errors.Count > 0 && args.Contains(CommonOptions.Json.Name))
    return VerbRunner.Fail(string.Join("; ", parse.Errors.Select(e => e.Message)), "ParseError", json: true);
return await parse.InvokeAsync();
