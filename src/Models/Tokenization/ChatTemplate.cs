namespace RlhfGym.Models.Tokenization;

/// <summary>
/// How a chat model expects one user turn and the start of its answer, for the common families. Hugging Face keeps
/// these as Jinja templates in tokenizer_config.json; the env needs only the single-turn case, so each family's
/// layout is written out here, with the token that ends the assistant's turn (an extra EOS id for the env).
/// </summary>
public sealed record ChatTemplate(string Name, string Prefix, string Suffix, string? EndOfTurn)
{
    public static readonly ChatTemplate Plain = new("plain", "", "", null);
    public static readonly ChatTemplate ChatMl = new("chatml", "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>");
    public static readonly ChatTemplate Llama3 = new("llama3", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n",
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>");
    /// <summary>Llama 2 and Mistral; the SentencePiece tokenizer adds &lt;s&gt; itself.</summary>
    public static readonly ChatTemplate Mistral = new("mistral", "[INST] ", " [/INST]", null);
    public static readonly ChatTemplate Phi3 = new("phi3", "<|user|>\n", "<|end|>\n<|assistant|>\n", "<|end|>");

    public static IReadOnlyList<ChatTemplate> All { get; } = [Plain, ChatMl, Llama3, Mistral, Phi3];

    public string Format(string userMessage) => Prefix + userMessage + Suffix;

    public static ChatTemplate Parse(string name) => All.FirstOrDefault(t => t.Name == name)
        ?? throw new ArgumentException($"chat template must be one of {string.Join(", ", All.Select(t => t.Name))}, or auto; got '{name}'");

    /// <summary>Recognise a tokenizer_config.json chat_template by its marker tokens; plain when there is none.</summary>
    public static ChatTemplate Detect(string? jinja)
    {
        if (string.IsNullOrEmpty(jinja)) return Plain;
        if (jinja.Contains("<|im_start|>")) return ChatMl;
        if (jinja.Contains("<|start_header_id|>")) return Llama3;
        if (jinja.Contains("<|user|>")) return Phi3;
        if (jinja.Contains("[INST]")) return Mistral;
        throw new NotSupportedException("tokenizer_config.json has a chat_template this build does not recognise; pass --chat-template plain|chatml|llama3|mistral|phi3");
    }
}
