namespace RlhfGym.Models.HuggingFace;

/// <summary>The checkpoint layouts the loader knows: GPT-2, and the Llama family (Llama, Mistral, Qwen2, Phi-3).</summary>
public enum HfFamily { Gpt2, Llama, Mistral, Qwen2, Phi3 }

public static class HfFamilies
{
    public static HfFamily FromModelType(string? modelType, string source) => modelType switch
    {
        "gpt2" => HfFamily.Gpt2,
        "llama" => HfFamily.Llama,
        "mistral" => HfFamily.Mistral,
        "qwen2" => HfFamily.Qwen2,
        "phi3" => HfFamily.Phi3,
        null => throw new NotSupportedException($"{source}: no 'model_type'; supported: gpt2, llama, mistral, qwen2, phi3"),
        _ => throw new NotSupportedException($"{source}: model_type '{modelType}' is not supported (gpt2, llama, mistral, qwen2, phi3)"),
    };

    public static string ModelType(HfFamily family) => family switch
    {
        HfFamily.Gpt2 => "gpt2",
        HfFamily.Llama => "llama",
        HfFamily.Mistral => "mistral",
        HfFamily.Qwen2 => "qwen2",
        _ => "phi3",
    };

    /// <summary>The transformers class a causal LM of this family is saved as.</summary>
    public static string CausalLmArchitecture(HfFamily family) => family switch
    {
        HfFamily.Gpt2 => "GPT2LMHeadModel",
        HfFamily.Llama => "LlamaForCausalLM",
        HfFamily.Mistral => "MistralForCausalLM",
        HfFamily.Qwen2 => "Qwen2ForCausalLM",
        _ => "Phi3ForCausalLM",
    };

    /// <summary>The transformers class a reward model (causal LM body + score head) of this family is saved as.</summary>
    public static string SequenceClassificationArchitecture(HfFamily family) => family switch
    {
        HfFamily.Gpt2 => "GPT2ForSequenceClassification",
        HfFamily.Llama => "LlamaForSequenceClassification",
        HfFamily.Mistral => "MistralForSequenceClassification",
        HfFamily.Qwen2 => "Qwen2ForSequenceClassification",
        _ => "Phi3ForSequenceClassification",
    };
}
