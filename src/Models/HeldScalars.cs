using TorchSharp;

namespace RlhfGym.Models;

/// <summary>
/// Scalars kept alive for the life of the process. TorchSharp passes a <see cref="Scalar"/>'s native handle to libtorch
/// without keeping the managed object alive, so a Scalar made on the fly by an implicit conversion (<c>t.add_(1)</c>)
/// can be finalized, and its native value freed, while libtorch is reading it: a rare use-after-free that surfaced as
/// "Expected false to be true ... toFloat" in a rotary addcmul_. Hot paths pass these instead (or their own fields).
/// </summary>
internal static class HeldScalars
{
    public static readonly Scalar One = 1;
    public static readonly Scalar NegativeInfinity = double.NegativeInfinity;
}
