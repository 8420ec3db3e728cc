import random

from simctl.faults.toxics.base import EOF, Attribute, Chunk, Stub, Toxic


def split_points(
    start: int, end: int, average: int, variation: int, rng: random.Random
) -> list[int]:
    """Toxiproxy's recursive halving: offsets of piece boundaries in [start, end]."""
    if (end - start) - average <= variation:
        return [start, end]
    mid = start + (end - start) // 2
    if variation > 0:
        mid += rng.randrange(variation * 2) - variation
    left = split_points(start, mid, average, variation, rng)
    right = split_points(mid, end, average, variation, rng)
    return left + right[1:]


class Slicer(Toxic):
    type_name = "slicer"
    summary = "Slices each chunk into smaller pieces, with a delay between pieces."
    attributes = (
        Attribute("average_size", "bytes", "average size of a piece", 1, 10**9),
        Attribute(
            "size_variation", "bytes", "variation of piece size; below average_size", 0, 10**9
        ),
        Attribute("delay", "us", "time between pieces, in microseconds", 0, 3_600_000_000),
    )

    @classmethod
    def check(cls, attrs: dict[str, int]) -> str | None:
        if attrs["average_size"] < 1:
            return "invalid attribute: average_size must be at least 1"
        if attrs["size_variation"] and attrs["size_variation"] >= attrs["average_size"]:
            return "invalid attribute: size_variation must be smaller than average_size"
        return None

    @staticmethod
    async def pipe(stub: Stub) -> None:
        while True:
            chunk = await stub.recv()
            if chunk is EOF:
                stub.close()
                return
            attrs = stub.attrs
            points = split_points(
                0, len(chunk.data), attrs["average_size"], attrs["size_variation"], stub.rng
            )
            data = chunk.data
            for i in range(1, len(points)):
                rest = Chunk(data[points[i] :], chunk.ts)
                stub.pending = rest if rest.data else None
                await stub.output.put(Chunk(data[points[i - 1] : points[i]], chunk.ts))
                await stub.sleep(attrs["delay"] / 1_000_000)
            stub.pending = None
