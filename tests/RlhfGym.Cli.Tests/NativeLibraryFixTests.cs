using System.Text;

namespace RlhfGym.Cli.Tests;

/// <summary>The build must ship a libLibTorchSharp.so whose GLIBCXX_3.4.32 requirement is weak (build/TorchSharp.targets).</summary>
public class NativeLibraryFixTests
{
    [Fact]
    public void Output_copy_of_LibTorchSharp_marks_GLIBCXX_3_4_32_weak()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (!File.Exists(path)) return; // external backend: libtorch and the binding come from elsewhere
        var flags = RequiredVersionFlags(File.ReadAllBytes(path));
        if (flags.TryGetValue("GLIBCXX_3.4.32", out var f)) Assert.True((f & 0x2) != 0, "GLIBCXX_3.4.32 is required but not marked weak");
        Assert.Contains("GLIBCXX_3.4.9", flags.Keys); // the walk really read the version-needs table
    }

    // Independent reader of .gnu.version_r: required version name → vna_flags.
    private static Dictionary<string, ushort> RequiredVersionFlags(byte[] elf)
    {
        var result = new Dictionary<string, ushort>();
        long shoff = (long)BitConverter.ToUInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A), shnum = BitConverter.ToUInt16(elf, 0x3C);
        for (int s = 0; s < shnum; s++)
        {
            int sh = (int)(shoff + s * shentsize);
            if (BitConverter.ToUInt32(elf, sh + 4) != 0x6ffffffe) continue;
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
