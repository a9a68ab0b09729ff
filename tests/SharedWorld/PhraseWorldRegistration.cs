using System.Runtime.CompilerServices;

namespace RlhfGym.Tests;

/// <summary>Test assemblies that load PhraseWorld bundles register the plug-in once, as the CLI does at start-up.</summary>
internal static class PhraseWorldRegistration
{
    [ModuleInitializer]
    internal static void Register() => RlhfGym.PhraseWorld.PhraseWorldPlugin.Register();
}
