/* Host harness for tests/test_cycles.py: the timing class the plugin's decoder gives each
 * instruction. Input lines: one instruction as objdump prints it, "HW1" or "HW1 HW2" (hex
 * halfwords); output lines: "CLASS NREGS LOAD CALL". The plugin API is stubbed out. */
#define CMCYCLES_DECODE_TEST 1
#include "../cmcycles.c"

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb)
{ (void)id; (void)cb; }
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags f, void *u)
{ (void)tb; (void)cb; (void)f; (void)u; }
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *i, qemu_plugin_vcpu_mem_cb_t cb,
                                      enum qemu_plugin_cb_flags f, enum qemu_plugin_mem_rw rw,
                                      void *u)
{ (void)i; (void)cb; (void)f; (void)rw; (void)u; }
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *u)
{ (void)id; (void)cb; (void)u; }
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb) { (void)tb; return 0; }
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb) { (void)tb; return 0; }
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t i)
{ (void)tb; (void)i; return NULL; }
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *i) { (void)i; return NULL; }
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *i) { (void)i; return 0; }
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *i) { (void)i; return 0; }
_Bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t info) { (void)info; return 0; }
void qemu_plugin_outs(const char *s) { (void)s; }

int main(void)
{
    char line[128];
    while (fgets(line, sizeof line, stdin)) {
        unsigned hw1 = 0, hw2 = 0;
        uint8_t b[4];
        int n = sscanf(line, "%x %x", &hw1, &hw2);
        dec_t d;
        if (n < 1)
            continue;
        b[0] = (uint8_t)hw1;
        b[1] = (uint8_t)(hw1 >> 8);
        b[2] = (uint8_t)hw2;
        b[3] = (uint8_t)(hw2 >> 8);
        d = decode(b, n == 2 ? 4u : 2u);
        printf("%s %u %u %u\n", cls_names[d.cls], d.nregs, d.load, d.call);
    }
    return 0;
}
