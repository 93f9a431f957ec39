// A hand-written backward pass of derive's built-in elman-softmax model, in C++ (standard library only).
//
//   z_t = W_hh h_(t-1) + W_xh x_t + b_h,  h_t = tanh(z_t),  o_t = W_hy h_t + b_y,
//   L = sum_t -log softmax(o_t)[c_t]
//
// It reads a case directory written by `derive against elman-softmax --write-case DIR` and writes its loss
// (DIR/loss.txt) and gradients (DIR/gradients/NAME.txt) in the same plain-text format:
//
//   c++ -O2 -std=c++17 -o elman_softmax examples/against/elman_softmax.cpp
//   derive against elman-softmax --write-case case1
//   ./elman_softmax case1
//   derive against elman-softmax --gradients case1
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

struct Array {
    std::vector<int> shape;
    std::vector<double> v;
    double &at(int i, int j) { return v[i * shape.back() + j]; }   // 2-D, row-major
};

// '#' lines are comments; "shape d1 d2 ..." gives the dims; then the numbers, row-major.
static Array read_array(const std::string &path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    Array a;
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string first;
        if (!(words >> first) || first[0] == '#') continue;
        if (first == "shape") {
            int d;
            while (words >> d) a.shape.push_back(d);
            continue;
        }
        a.v.push_back(std::stod(first));
        double x;
        while (words >> x) a.v.push_back(x);
    }
    return a;
}

static void write_array(const std::string &path, const std::string &name, const Array &a) {
    std::ofstream out(path);
    out << "# " << name << "\nshape";
    for (int d : a.shape) out << ' ' << d;
    out << '\n';
    int last = a.shape.empty() ? 1 : a.shape.back();
    char buf[64];
    for (size_t k = 0; k < a.v.size(); ++k) {
        std::snprintf(buf, sizeof buf, "%.17g", a.v[k]);
        out << buf << ((k + 1) % last == 0 ? '\n' : ' ');
    }
}

static Array zeros(std::vector<int> shape) {
    Array a;
    a.shape = shape;
    size_t n = 1;
    for (int d : shape) n *= d;
    a.v.assign(n, 0.0);
    return a;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        std::cerr << "usage: elman_softmax CASE_DIR\n";
        return 2;
    }
    std::string dir = argv[1];
    try {
        Array W_hh = read_array(dir + "/params/W_hh.txt"), W_xh = read_array(dir + "/params/W_xh.txt");
        Array b_h = read_array(dir + "/params/b_h.txt"), W_hy = read_array(dir + "/params/W_hy.txt");
        Array b_y = read_array(dir + "/params/b_y.txt");
        Array x = read_array(dir + "/data/x.txt"), c = read_array(dir + "/data/c.txt");
        Array h0 = read_array(dir + "/data/h_0.txt");
        const int T = x.shape[0], F = x.shape[1], B = x.shape[2], H = W_hh.shape[0], O = W_hy.shape[0];
        // forward: h[t][i*B + b], y[t][k*B + b]
        std::vector<std::vector<double>> h(T + 1, std::vector<double>(H * B)), y(T, std::vector<double>(O * B));
        h[0] = h0.v;
        double loss = 0.0;
        for (int t = 1; t <= T; ++t) {
            for (int i = 0; i < H; ++i)
                for (int b = 0; b < B; ++b) {
                    double z = b_h.v[i];
                    for (int j = 0; j < H; ++j) z += W_hh.at(i, j) * h[t - 1][j * B + b];
                    for (int f = 0; f < F; ++f) z += W_xh.at(i, f) * x.v[((t - 1) * F + f) * B + b];
                    h[t][i * B + b] = std::tanh(z);
                }
            for (int b = 0; b < B; ++b) {
                std::vector<double> o(O);
                double top = -INFINITY, sum = 0.0;
                for (int k = 0; k < O; ++k) {
                    o[k] = b_y.v[k];
                    for (int j = 0; j < H; ++j) o[k] += W_hy.at(k, j) * h[t][j * B + b];
                    top = std::max(top, o[k]);
                }
                for (int k = 0; k < O; ++k) sum += std::exp(o[k] - top);
                for (int k = 0; k < O; ++k) y[t - 1][k * B + b] = std::exp(o[k] - top) / sum;
                loss -= std::log(y[t - 1][int(c.v[(t - 1) * B + b]) * B + b]);
            }
        }
        // backward
        Array gW_hh = zeros(W_hh.shape), gW_xh = zeros(W_xh.shape), gb_h = zeros(b_h.shape);
        Array gW_hy = zeros(W_hy.shape), gb_y = zeros(b_y.shape), gh0 = zeros(h0.shape);
        std::vector<double> dh_next(H * B, 0.0), dz(H * B), dout(O * B);
        for (int t = T; t >= 1; --t) {
            for (int k = 0; k < O; ++k)
                for (int b = 0; b < B; ++b)
                    dout[k * B + b] = y[t - 1][k * B + b] - (int(c.v[(t - 1) * B + b]) == k ? 1.0 : 0.0);
            for (int k = 0; k < O; ++k)
                for (int b = 0; b < B; ++b) {
                    gb_y.v[k] += dout[k * B + b];
                    for (int j = 0; j < H; ++j) gW_hy.at(k, j) += dout[k * B + b] * h[t][j * B + b];
                }
            for (int i = 0; i < H; ++i)
                for (int b = 0; b < B; ++b) {
                    double dh = dh_next[i * B + b];
                    for (int k = 0; k < O; ++k) dh += W_hy.at(k, i) * dout[k * B + b];
                    double hv = h[t][i * B + b];
                    dz[i * B + b] = dh * (1.0 - hv * hv);
                }
            for (int i = 0; i < H; ++i)
                for (int b = 0; b < B; ++b) {
                    gb_h.v[i] += dz[i * B + b];
                    for (int j = 0; j < H; ++j) gW_hh.at(i, j) += dz[i * B + b] * h[t - 1][j * B + b];
                    for (int f = 0; f < F; ++f) gW_xh.at(i, f) += dz[i * B + b] * x.v[((t - 1) * F + f) * B + b];
                }
            for (int j = 0; j < H; ++j)
                for (int b = 0; b < B; ++b) {
                    double s = 0.0;
                    for (int i = 0; i < H; ++i) s += W_hh.at(i, j) * dz[i * B + b];
                    dh_next[j * B + b] = s;
                }
        }
        gh0.v = dh_next;
        std::filesystem::create_directories(dir + "/gradients");
        write_array(dir + "/gradients/W_hh.txt", "dL/dW_hh", gW_hh);
        write_array(dir + "/gradients/W_xh.txt", "dL/dW_xh", gW_xh);
        write_array(dir + "/gradients/b_h.txt", "dL/db_h", gb_h);
        write_array(dir + "/gradients/W_hy.txt", "dL/dW_hy", gW_hy);
        write_array(dir + "/gradients/b_y.txt", "dL/db_y", gb_y);
        write_array(dir + "/gradients/h_0.txt", "dL/dh_0", gh0);
        Array l = zeros({});
        l.v = {loss};
        write_array(dir + "/loss.txt", "loss", l);
    } catch (const std::exception &e) {
        std::cerr << "elman_softmax: " << e.what() << "\n";
        return 2;
    }
    return 0;
}
