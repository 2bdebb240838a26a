#include "crc32.h"

uint32_t tsnn_crc32_update(uint32_t crc, const uint8_t *data, size_t len)
{
    uint32_t c = crc ^ 0xFFFFFFFFu;
    size_t i;
    for (i = 0; i < len; i++) {
        int k;
        c ^= (uint32_t)data[i];
        for (k = 0; k < 8; k++) {
            uint32_t mask = (uint32_t)0 - (c & 1u);
            c = (c >> 1) ^ (0xEDB88320u & mask);
        }
    }
    return c ^ 0xFFFFFFFFu;
}
