using System.Text;

namespace RlhfGym.Tests;

/// <summary>
/// An independent reader of an ELF file's .gnu.version_r section (required symbol versions → vna_flags), to check
/// the Debian 12 fix on whatever copy of libLibTorchSharp.so a build, a package or an installed tool ships.
/// </summary>
internal static class ElfVersionNeeds
{
    private const ushort WeakFlag = 0x2; // VER_FLG_WEAK

    /// <summary>Asserts that GLIBCXX_3.4.32, if required at all, is weak, and that the table was really read.</summary>
    public static void AssertGlibcxx3432IsWeak(string path)
    {
        var flags = RequiredVersionFlags(File.ReadAllBytes(path));
        if (flags.TryGetValue("GLIBCXX_3.4.32", out var f))
            Assert.True((f & WeakFlag) != 0, $"{path}: GLIBCXX_3.4.32 is required but not marked weak");
        Assert.Contains("GLIBCXX_3.4.9", flags.Keys); // the walk really read the version-needs table
    }

    public static Dictionary<string, ushort> RequiredVersionFlags(byte[] elf)
    {
        var result = new Dictionary<string, ushort>();
        long shoff = (long)BitConverter.ToUInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A), shnum = BitConverter.ToUInt16(elf, 0x3C);
        for (int s = 0; s < shnum; s++)
        {
            int sh = (int)(shoff + s * shentsize);
            if (BitConverter.ToUInt32(elf, sh + 4) != 0x6ffffffe) continue; // SHT_GNU_verneed
            int offset = (int)BitConverter.ToUInt64(elf, sh + 24);
            int link = (int)BitConverter.ToUInt32(elf, sh + 40);
            int count = (int)BitConverter.ToUInt32(elf, sh + 44);
            int strtab = (int)BitConverter.ToUInt64(elf, (int)(shoff + link * shentsize) + 24);
            int need = offset;
            for (int n = 0; n < count; n++, need += (int)BitConverter.ToUInt32(elf, need + 12))
            {
                int aux = need + (int)BitConverter.ToUInt32(elf, need + 8);
                for (int a = 0; a < BitConverter.ToUInt16(elf, need + 2); a++, aux += (int)BitConverter.ToUInt32(elf, aux + 12))
                {
                    int name = strtab + (int)BitConverter.ToUInt32(elf, aux + 8);
                    int end = Array.IndexOf(elf, (byte)0, name);
                    result[Encoding.ASCII.GetString(elf, name, end - name)] = BitConverter.ToUInt16(elf, aux + 4);
                }
            }
        }
        return result;
    }
}
