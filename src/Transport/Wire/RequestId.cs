using MessagePack;

namespace RlhfGym.Transport.Wire;

/// <summary>
/// The id of a request that failed to deserialize (a wrong-typed field, an integer out of range), read leniently from
/// the raw frame so that the error reply still carries it: a client matching replies by id then gets its error at once
/// instead of waiting out its timeout.
/// </summary>
public static class RequestId
{
    /// <summary>The last integer "id" of the top-level map (duplicate keys: the last wins, as in a full read); null when
    /// the frame is not a map or has no readable integer id.</summary>
    public static long? TryRead(ReadOnlyMemory<byte> frame)
    {
        long? id = null;
        try
        {
            var reader = new MessagePackReader(frame);
            if (reader.NextMessagePackType != MessagePackType.Map) return null;
            int entries = reader.ReadMapHeader();
            for (int i = 0; i < entries; i++)
            {
                string? key = null;
                if (reader.NextMessagePackType == MessagePackType.String) key = reader.ReadString();
                else reader.Skip();
                if (key == "id" && reader.NextMessagePackType == MessagePackType.Integer) id = reader.ReadInt64();
                else reader.Skip();
            }
        }
        catch (Exception)
        {
            // Best effort on a frame already known to be bad: the reader may fail in many ways (truncated, malformed,
            // an id beyond 64 bits, absurd lengths); whatever was read before that is kept, and this never throws.
        }
        return id;
    }
}
