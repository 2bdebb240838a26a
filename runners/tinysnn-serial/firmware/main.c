/* The firmware's main loop: bytes from the UART go to the protocol, nothing else. */
#include "port.h"
#include "protocol.h"

int main(void)
{
    port_init();
    tsnn_proto_init();
    tsnn_proto_banner();
    for (;;) {
        int c = port_uart_getc();
        if (c < 0)
            break;
        tsnn_proto_feed((uint8_t)c);
    }
    port_uart_flush();
    return 0;
}
