namespace RlhfGym.Agents.Algorithms;

/// <summary>
/// How an assembly of your own algorithms registers them when it is loaded (`rlhfgym train --algorithm-assembly
/// My.dll`, or <see cref="AlgorithmAssemblies.Load"/>): every public non-abstract class implementing this interface,
/// with a public parameterless constructor, is made once and its <see cref="Register"/> called.
/// </summary>
public interface IAlgorithmPlugin
{
    /// <summary>Call <see cref="AlgorithmRegistry.Register"/> for each algorithm the assembly offers.</summary>
    void Register();
}
