/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320, init and xorout 0xFFFFFFFF): the same
 * value as Python's zlib.crc32 and binascii.crc32. Bitwise, table-free (small flash). */
#ifndef TSNN_CRC32_H
#define TSNN_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: start with crc = 0, feed any number of pieces. */
uint32_t tsnn_crc32_update(uint32_t crc, const uint8_t *data, size_t len);

#endif
