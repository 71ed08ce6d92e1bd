# The night file format in one name, for the host tools and tests: layer 1 (bit codec and
# framing, nfcodec), 2 (encoders, nfencode) and 3 (decoder, nfdecode). The device imports the
# layers it needs directly, so this module costs it no RAM.
# Specification: docs/night-format.md. Vocabulary (fields, units, flags, events): nsdev.core.vocab.
from nsdev.core.nfcodec import (  # noqa: F401
    BAD_CRC,
    BAD_LENGTH,
    BAD_TRUNCATED,
    BAD_TYPE,
    MAX_BEATS,
    REASONS,
    BitReader,
    BitWriter,
    check_frame,
    epoch_t_off_s,
    epoch_time_code,
    field_code,
    field_value,
    finish,
    get_uvarint,
    iter_frames,
    put_svarint,
    put_uvarint,
    unzigzag,
    zigzag,
)
from nsdev.core.nfdecode import (  # noqa: F401
    decode,
    decode_payload,
    event_fields,
    record_time_beats,
)
from nsdev.core.nfencode import (  # noqa: F401
    append_beats,
    encode_beats,
    encode_env,
    encode_epoch,
    encode_event,
    encode_header,
    encode_night_end,
    write_magic,
)
