using System.Reflection;

namespace RlhfGym.Agents.Algorithms;

/// <summary>
/// Loads algorithms written outside the library: an assembly file whose <see cref="IAlgorithmPlugin"/> classes register
/// them in <see cref="AlgorithmRegistry"/>. After that they train, checkpoint, resume and compare like the built-ins.
/// </summary>
public static class AlgorithmAssemblies
{
    private static readonly object Gate = new();
    private static readonly Dictionary<string, IReadOnlyList<string>> Loaded = new(StringComparer.Ordinal);

    /// <summary>Load <paramref name="path"/> (once per process) and run its plugins; returns the names they registered.</summary>
    public static IReadOnlyList<string> Load(string path)
    {
        string full = Path.GetFullPath(path);
        lock (Gate)
        {
            if (Loaded.TryGetValue(full, out var known)) return known;
            if (!File.Exists(full)) throw new FileNotFoundException($"algorithm assembly {full}: file not found", full);
            Assembly assembly;
            try
            {
                assembly = Assembly.LoadFrom(full);
            }
            catch (BadImageFormatException e)
            {
                throw new ArgumentException($"algorithm assembly {full}: not a .NET assembly ({e.Message})", e);
            }
            Type[] types;
            try
            {
                types = assembly.GetExportedTypes();
            }
            catch (Exception e) when (e is ReflectionTypeLoadException or FileNotFoundException or FileLoadException)
            {
                throw new ArgumentException($"algorithm assembly {full}: its types cannot be loaded ({e.Message}); build it against this version of RlhfGym.Agents", e);
            }
            var plugins = types.Where(t => t.IsClass && !t.IsAbstract && typeof(IAlgorithmPlugin).IsAssignableFrom(t)).ToList();
            if (plugins.Count == 0)
                throw new ArgumentException($"algorithm assembly {full}: no public class implements {nameof(IAlgorithmPlugin)}, so it registers no algorithm");
            var before = AlgorithmRegistry.Names.ToHashSet();
            foreach (var type in plugins)
            {
                if (type.GetConstructor(Type.EmptyTypes) is null)
                    throw new ArgumentException($"algorithm assembly {full}: {type.FullName} needs a public parameterless constructor");
                ((IAlgorithmPlugin)Activator.CreateInstance(type)!).Register();
            }
            var added = AlgorithmRegistry.Names.Where(n => !before.Contains(n)).ToList();
            Loaded[full] = added;
            return added;
        }
    }
}
