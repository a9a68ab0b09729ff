namespace RlhfGym.Models.Tokenization;

/// <summary>Text ↔ token ids. Ids are 0..VocabSize-1; special tokens are in the vocabulary.</summary>
public interface ITokenizer
{
    int VocabSize { get; }
    int EosId { get; }
    int PadId { get; }
    IReadOnlyDictionary<string, int> SpecialTokens { get; }
    int[] Encode(string text);
    string Decode(ReadOnlySpan<int> ids);
    /// <summary>The text of one token (for reports and segment displays).</summary>
    string TokenText(int id);
}
