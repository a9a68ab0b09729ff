namespace RlhfGym.Models.Checkpoints;

/// <summary>A checkpoint file is unreadable or does not fit the model. The message names the file and, where one
/// is to blame, the tensor.</summary>
public sealed class CheckpointFormatException : Exception
{
    public string FilePath { get; }
    public string? TensorName { get; }

    public CheckpointFormatException(string filePath, string? tensorName, string problem, Exception? inner = null)
        : base(tensorName is null ? $"{filePath}: {problem}" : $"{filePath}: tensor '{tensorName}': {problem}", inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }
}
