using System.Text;
using Microsoft.ML.Tokenizers;

namespace RlhfGym.Models.Tokenization;

/// <summary>
/// Hugging Face BPE's ignore_merges: each pre-token whose byte-level form is in the vocabulary becomes that one id;
/// the others go through BPE as usual. Special tokens stay whole. Microsoft.ML.Tokenizers has no such option, so the
/// split is done here with the same pre-tokenizer, and BPE is asked only for the pieces the vocabulary lacks.
/// </summary>
internal sealed class WholeWordLookup(PreTokenizer preTokenizer, IReadOnlyDictionary<string, int> vocabulary, IReadOnlyDictionary<string, int> specials)
{
    // GPT-2's byte → printable character table (bytes that print as themselves keep their code; the rest move to 256+).
    private static readonly char[] ByteToChar = BuildByteTable();

    public int[] Encode(string text, Tokenizer bpe)
    {
        var ids = new List<int>();
        foreach (var (offset, length) in preTokenizer.PreTokenize(text))
        {
            string piece = text.Substring(offset, length);
            if (specials.TryGetValue(piece, out int special)) ids.Add(special);
            else if (vocabulary.TryGetValue(ByteLevel(piece), out int whole)) ids.Add(whole);
            else ids.AddRange(bpe.EncodeToIds(piece, considerPreTokenization: false, considerNormalization: true));
        }
        return ids.ToArray();
    }

    private static string ByteLevel(string piece)
    {
        var bytes = Encoding.UTF8.GetBytes(piece);
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    private static char[] BuildByteTable()
    {
        var table = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[b] = printable ? (char)b : (char)next++;
        }
        return table;
    }
}
